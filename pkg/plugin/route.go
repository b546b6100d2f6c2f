package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/route"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/routing"
)

const routeLong = `Route a Service's versions across clusters, and balance it by locality.

Version routing writes, in the cluster of --context, one VirtualService for
both names of the Service: <service>.<namespace>.svc.cluster.local and
<service>.<namespace>.global. Each version of --to and --otherwise goes to
the local host's subset when the cluster runs Pods of that version, else to
the .global host's subset when an export into the cluster provides it (the
.global DestinationRule kubectl mesh export wrote, which sends the source
cluster's SNI for that version); a version found nowhere is an error. The
local DestinationRule subsets the routes need are written or merged; one you
own is left alone and route lists what it must define.

--when adds a matched rule (header:NAME=VALUE, prefix:NAME=VALUE,
regex:NAME=VALUE, uri-prefix:/PATH); rules keep their order, the same match
again replaces its rule, and the default rule (--otherwise, else the local
host without subset) is always last. --remove takes out one rule (with
--when) or the whole VirtualService (only one route wrote).

Locality: --failover FROM=TO region pairs or --distribute weights set
localityLbSetting on the DestinationRule of the host (--host global: the
.global rule export wrote, at every level of it, since port-level settings
do not inherit; --host local: the local rule), in every --contexts cluster,
always with outlier detection: without it Envoy never fails over. Endpoints
of a .global entry carry their source's locality (export sets it).`

const routeExample = `  # Requests of jason: 70% to v2 and 30% to v3, both in cluster2 (through
  # helloworld.hello.global); everyone else: v1 in cluster1
  kubectl mesh route helloworld -n hello --context cluster1 \
    --when header:end-user=jason --to v2=70,v3=30 --otherwise v1

  # Remove jason's rule again, then the whole VirtualService
  kubectl mesh route helloworld -n hello --context cluster1 --remove --when header:end-user=jason
  kubectl mesh route helloworld -n hello --context cluster1 --remove

  # Fail over from region1 to region2, in both clusters
  kubectl mesh route helloworld -n hello --contexts cluster1,cluster2 --failover region1=region2

  # Keep 80% of region1's traffic in region1
  kubectl mesh route helloworld -n hello --context cluster1 \
    --distribute 'region1/*=region1/*:80,region2/*:20'`

// RouteOptions are the options of `kubectl mesh route`.
type RouteOptions struct {
	Service    string
	To         []string
	When       string
	Otherwise  string
	Remove     bool
	Failover   []string
	Distribute string
	Host       string
	Contexts   []string
	Outlier    builders.Outlier
	// VersionLabel is the Pod label whose values are versions.
	VersionLabel string
	// DryRun is --dry-run, parsed by Complete.
	DryRun     cli.DryRun
	PrintFlags *cli.PrintFlags

	dryRunFlag string
	factory    cli.Factory
	namespace  string
	context    string
	weights    []routing.Weight
	match      *routing.Match
	policy     *builders.LocalityPolicy
	genericiooptions.IOStreams
}

// NewCmdRoute returns `kubectl mesh route`.
func NewCmdRoute(f cli.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &RouteOptions{
		factory: f, IOStreams: streams, Host: "global", Outlier: builders.DefaultOutlier,
		VersionLabel: builders.DefaultVersionLabel, PrintFlags: cli.NewPrintFlags("routed"),
	}
	cmd := &cobra.Command{
		Use:     "route SERVICE -n NAMESPACE [--context CONTEXT] (--to VERSION=WEIGHT,… [--when MATCH] [--otherwise VERSION] | --remove [--when MATCH] | --failover FROM=TO,… | --distribute SPEC)",
		Short:   "Route a Service's versions across clusters (weights, header matches) and balance it by locality",
		Long:    routeLong,
		Example: routeExample,
		Args:    cobra.ExactArgs(1),
		RunE:    cli.RunE(o),
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&o.To, "to", nil, "Weighted versions VERSION=WEIGHT,… adding up to 100 (one VERSION alone: all of it).")
	fl.StringVar(&o.When, "when", "", "Match of the rule: header:NAME=VALUE, prefix:NAME=VALUE, regex:NAME=VALUE or uri-prefix:/PATH.")
	fl.StringVar(&o.Otherwise, "otherwise", "", "Version of the default rule (default: the local host, no subset).")
	fl.BoolVar(&o.Remove, "remove", false, "Remove the rule of --when, or without --when the whole VirtualService.")
	fl.StringSliceVar(&o.Failover, "failover", nil, "Locality failover FROM=TO region pairs.")
	fl.StringVar(&o.Distribute, "distribute", "", "Locality distribution 'FROM=TO:WEIGHT,TO:WEIGHT;FROM=…' (weights per FROM add up to 100).")
	fl.StringVar(&o.Host, "host", o.Host, `With --failover/--distribute: the host whose DestinationRule gets the policy, "global" or "local".`)
	fl.StringSliceVar(&o.Contexts, "contexts", nil, "With --failover/--distribute: the clusters to write it in (default: --context).")
	fl.Uint32Var(&o.Outlier.Consecutive5xxErrors, "consecutive-5xx-errors", o.Outlier.Consecutive5xxErrors, "Outlier detection: 5xx responses in a row that eject an endpoint.")
	fl.DurationVar(&o.Outlier.Interval, "outlier-interval", o.Outlier.Interval, "Outlier detection: how often endpoints are checked.")
	fl.DurationVar(&o.Outlier.BaseEjectionTime, "base-ejection-time", o.Outlier.BaseEjectionTime, "Outlier detection: how long an endpoint stays ejected.")
	fl.StringVar(&o.VersionLabel, "version-label", o.VersionLabel, "Pod label whose values are the Service's versions.")
	cli.AddDryRunFlag(cmd, &o.dryRunFlag)
	o.PrintFlags.AddFlags(cmd)
	return cmd
}

// Complete reads the namespace and context and parses the flags' values.
func (o *RouteOptions) Complete(_ *cobra.Command, args []string) error {
	o.Service = args[0]
	d, err := cli.ParseDryRun(o.dryRunFlag)
	if err != nil {
		return err
	}
	o.DryRun = d
	ns, _, err := o.factory.Getter.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return err
	}
	o.namespace = ns
	if o.context, err = o.factory.CurrentContext(); err != nil {
		return fmt.Errorf("--context: %w", err)
	}
	if err := o.factory.CheckContexts(append([]string{o.context}, o.Contexts...)...); err != nil {
		return err
	}
	if len(o.To) > 0 {
		if o.weights, err = routing.ParseWeights(o.To); err != nil {
			return err
		}
	}
	if o.When != "" {
		m, err := routing.ParseWhen(o.When)
		if err != nil {
			return err
		}
		o.match = &m
	}
	if len(o.Failover) > 0 || o.Distribute != "" {
		p := &builders.LocalityPolicy{Outlier: o.Outlier}
		if p.Failover, err = routing.ParseFailover(o.Failover); err != nil {
			return err
		}
		if o.Distribute != "" {
			if p.Distribute, err = routing.ParseDistribute(o.Distribute); err != nil {
				return err
			}
		}
		o.policy = p
	}
	return nil
}

// Validate checks that the flags make one consistent request.
func (o *RouteOptions) Validate() error {
	versions := len(o.To) > 0 || o.When != "" || o.Otherwise != "" || o.Remove
	locality := o.policy != nil
	switch {
	case versions && locality:
		return errors.New("--failover/--distribute set a DestinationRule, --to/--when/--otherwise/--remove the VirtualService: run them as two commands")
	case !versions && !locality:
		return errors.New("say what to route: --to (with --when, --otherwise), --remove, --failover or --distribute")
	case o.Remove && (len(o.To) > 0 || o.Otherwise != ""):
		return errors.New("--remove takes only --when; it cannot be combined with --to or --otherwise")
	case o.When != "" && len(o.To) == 0 && !o.Remove:
		return fmt.Errorf("--when %s needs --to: the versions its requests go to", o.When)
	case len(o.To) > 0 && o.When == "" && o.Otherwise != "":
		return errors.New("--to without --when sets the default rule, and so does --otherwise: give one of them, or add --when")
	case len(o.Contexts) > 0 && !locality:
		return errors.New("--contexts applies to --failover/--distribute; version routing writes into --context")
	case o.Host != "global" && o.Host != "local":
		return fmt.Errorf("--host %q: use global (the .global rule of exports into the cluster) or local (the Service's own rule)", o.Host)
	}
	if locality {
		if len(o.policy.Failover) > 0 && o.Outlier.Consecutive5xxErrors == 0 {
			return errors.New("--failover with --consecutive-5xx-errors 0 is refused: without outlier detection Envoy never marks an endpoint unhealthy, so traffic never fails over")
		}
		if err := o.policy.Validate(); err != nil {
			return fmt.Errorf("--failover/--distribute: %w", err)
		}
	}
	return o.PrintFlags.Validate()
}

// Run writes the VirtualService or the locality policy and prints what it
// did; the error says which objects failed.
func (o *RouteOptions) Run(ctx context.Context) error {
	r := route.Router{Factory: o.factory, Warnings: o.ErrOut}
	rows, err := r.Run(ctx, route.Request{
		Service: o.Service, Namespace: o.namespace, Context: o.context, Contexts: o.Contexts,
		Weights: o.weights, Match: o.match, When: o.When, Otherwise: o.Otherwise, Remove: o.Remove,
		Policy: o.policy, Host: o.Host, VersionLabel: o.VersionLabel, DryRun: o.DryRun,
	})
	if err != nil {
		return err
	}
	cli.SortRows(rows)
	if err := cli.PrintRows(o.Out, o.PrintFlags, rows, o.DryRun.Suffix()); err != nil {
		return err
	}
	return cli.Failures(rows, "route")
}
