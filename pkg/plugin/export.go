package plugin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/export"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/gateway"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

const exportLong = `Make Services of one cluster callable from other clusters of an Istio mesh
with replicated control planes (".global" model).

For every Service, export reads its ports and versions (the version label of
the Pods it selects) and the source cluster's gateway address (its east-west
gateway when it has one, else its ingress gateway), then writes into every
target cluster a ServiceEntry for <service>.<namespace>.global
(MESH_INTERNAL, resolution DNS, one endpoint per source cluster on the
gateway's port 15443, a VIP unique in that cluster) and a DestinationRule
that makes requests land: ISTIO_MUTUAL with the source's own SNI per port,
outbound_.<port>_._.<service>.<namespace>.svc.cluster.local, and one subset
per remote version that selects the endpoint label cluster=<source> and
sends outbound_.<port>_.<version>_.<service>.<namespace>.svc.cluster.local.
The source gateway's *.local AUTO_PASSTHROUGH server (kubectl mesh link
makes sure there is one) routes exactly these names; Istio's default SNI
would name the .global host, which routes nowhere on Istio 1.14 and later.
In the source cluster export writes a DestinationRule mapping those subsets
to the Pods' version label, unless you own one for that host. A .global
DestinationRule you own is left alone; export then lists the SNIs it must
carry.

Exporting the same Service from a second cluster adds that cluster's endpoint;
running export again changes nothing and keeps every VIP. When a target fails,
the others still complete and nothing half-written is left in the failed one:
what this run wrote there is undone (a rule it created is deleted, a rule it
changed is put back, a VIP claim it made is released); a re-run converges.
Interrupted (Ctrl-C, SIGTERM), export stops its requests and puts every
target that had not finished back as it was, including the Services it had
already written there, says what it undid and exits non-zero; a second
Ctrl-C ends it at once.

--via-egress is refused: the egress gateway's AUTO_PASSTHROUGH server passes
the caller's TLS on untouched, so the SNI would have to name a service of
the calling cluster (for the egress gateway) and one of the source cluster
(for its gateway) at once; no SNI does both, and such an entry routes
nowhere on current Istio.`

const exportExample = `  # Make httpbin in namespace bar of cluster2 callable from cluster1
  kubectl mesh export httpbin -n bar --from cluster2 --to cluster1

  # Export helloworld from two clusters into one; the second adds an endpoint
  kubectl mesh export helloworld -n hello --from cluster2 --to cluster1
  kubectl mesh export helloworld -n hello --from cluster3 --to cluster1

  # Every Service labelled tier=api, into two clusters; the source cluster's
  # DNS domain is not cluster.local
  kubectl mesh export -l tier=api -n shop --from east --to west,north --source-cluster-domain east.internal

  # Show what would be written, without contacting the targets
  kubectl mesh export httpbin -n bar --from cluster2 --to cluster1 --dry-run=client -o yaml`

// ExportOptions are the options of `kubectl mesh export`.
type ExportOptions struct {
	exportScope
	Selector        string
	All             bool
	CreateNamespace bool
	VersionLabel    string
	GatewayService  string
	GatewayNS       string
	GatewayAddress  string
	ClusterDomain   string
	Locality        string
	ViaEgress       bool

	override *gateway.Address
	genericiooptions.IOStreams
}

// NewExportOptions returns options with kubectl's defaults.
func NewExportOptions(f cli.Factory, streams genericiooptions.IOStreams) *ExportOptions {
	return &ExportOptions{
		exportScope:   exportScope{PrintFlags: cli.NewPrintFlags("exported"), factory: f},
		VersionLabel:  builders.DefaultVersionLabel,
		ClusterDomain: rules.DefaultClusterDomain,
		GatewayNS:     gateway.DefaultNamespace,
		IOStreams:     streams,
	}
}

// NewCmdExport returns `kubectl mesh export`.
func NewCmdExport(f cli.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewExportOptions(f, streams)
	cmd := &cobra.Command{
		Use:     "export (SERVICE... | -l SELECTOR | --all) -n NAMESPACE --from CONTEXT --to CONTEXT[,CONTEXT...]",
		Short:   "Make Services of one cluster callable from others as <service>.<namespace>.global",
		Long:    exportLong,
		Example: exportExample,
		RunE:    cli.RunE(o),
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Selector, "selector", "l", "", "Export the Services matching this label selector.")
	fl.BoolVar(&o.All, "all", false, "Export every Service of the namespace.")
	o.addFlags(cmd, "in endpoint labels and subsets", "of the ServiceEntry and DestinationRule")
	fl.BoolVar(&o.CreateNamespace, "create-namespace", false, "Create the target namespace where it is missing.")
	fl.StringVar(&o.VersionLabel, "version-label", o.VersionLabel, "Pod label whose values are the Service's versions.")
	fl.StringVar(&o.GatewayService, "gateway-service", "", "Gateway Service of the source cluster (default: istio-eastwestgateway when it exists, else istio-ingressgateway).")
	fl.StringVar(&o.GatewayNS, "gateway-namespace", o.GatewayNS, "Namespace of the gateway Services.")
	fl.StringVar(&o.GatewayAddress, "gateway-address", "", "Source gateway address HOST[:PORT], instead of discovering it.")
	fl.StringVar(&o.ClusterDomain, "source-cluster-domain", o.ClusterDomain, "DNS domain of the source cluster, as in the SNI of its services.")
	fl.StringVar(&o.Locality, "locality", "", "Locality REGION[/ZONE] of the source's gateway on the entry's endpoint (default: from the topology labels of the nodes its pods run on, or of all nodes when they agree).")
	fl.BoolVar(&o.ViaEgress, "via-egress", false, "Refused: an entry sent through the caller's egress gateway routes nowhere on current Istio (see above).")
	return cmd
}

// Complete reads the namespace, resolves the contexts and parses
// --dry-run and --gateway-address.
func (o *ExportOptions) Complete(_ *cobra.Command, args []string) error {
	if err := o.complete(args); err != nil {
		return err
	}
	if o.GatewayAddress != "" {
		a, err := gateway.ParseOverride(o.GatewayAddress)
		if err != nil {
			return err
		}
		o.override = &a
	}
	return nil
}

// Validate checks the flags.
func (o *ExportOptions) Validate() error {
	if err := validateServiceArgs(o.Services, o.Selector, o.All); err != nil {
		return err
	}
	if err := validateTargets(o.From, o.To); err != nil {
		return err
	}
	if o.ViaEgress {
		return errViaEgress
	}
	if err := rules.ValidateClusterDomain(o.ClusterDomain); err != nil {
		return fmt.Errorf("--source-cluster-domain: %w", err)
	}
	if err := validateLocality(o.Locality); err != nil {
		return err
	}
	if err := o.PrintFlags.Validate(); err != nil {
		return err
	}
	return validateClusterName(o.FromClusterName)
}

// validateLocality checks --locality: REGION or REGION/ZONE (Istio also
// knows a subzone, which the topology labels of a node do not give).
func validateLocality(l string) error {
	if l == "" {
		return nil
	}
	parts := strings.Split(l, "/")
	if len(parts) > 3 || slices.Contains(parts, "") || strings.ContainsAny(l, "* ") {
		return fmt.Errorf("--locality %q: use REGION, REGION/ZONE or REGION/ZONE/SUBZONE, e.g. eu-west-1/eu-west-1a", l)
	}
	return nil
}

// errViaEgress says why --via-egress is refused (see exportLong).
var errViaEgress = errors.New("--via-egress is refused: the caller's egress gateway passes the TLS connection on untouched (AUTO_PASSTHROUGH), so its SNI would have to name a service of the calling cluster for the egress gateway and one of the source cluster for the source gateway at once, and such an entry routes nowhere on Istio 1.14 and later; export without --via-egress")

// Run exports and prints the outcome; the error says which clusters or
// services failed.
func (o *ExportOptions) Run(ctx context.Context) error {
	res, err := export.Export(ctx, o.factory, export.Request{
		From: o.From, To: o.To,
		Services: o.Services, Selector: o.Selector, All: o.All,
		Namespace: o.namespace, TargetNamespace: o.TargetNamespace, CreateNamespace: o.CreateNamespace,
		ClusterName: o.FromClusterName, VersionLabel: o.VersionLabel,
		Gateway:        gateway.Options{Service: o.GatewayService, Namespace: o.GatewayNS},
		GatewayAddress: o.override,
		ClusterDomain:  o.ClusterDomain, Locality: o.Locality,
		DryRun: o.dryRun, Warnings: o.ErrOut,
	})
	if err != nil {
		return err
	}
	if err := cli.PrintRows(o.Out, o.PrintFlags, res.Rows, o.dryRun.Suffix()); err != nil {
		return err
	}
	return res.Err
}

func validateServiceArgs(services []string, selector string, all bool) error {
	n := 0
	for _, set := range []bool{len(services) > 0, selector != "", all} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return errors.New("name the Services to export: SERVICE..., -l SELECTOR or --all")
	case n > 1:
		return errors.New("use only one of SERVICE..., -l SELECTOR and --all")
	}
	for _, s := range services {
		if strings.Contains(s, "/") {
			return fmt.Errorf("service %q: give bare Service names and the namespace with -n", s)
		}
	}
	return nil
}

func validateTargets(from string, to []string) error {
	if len(to) == 0 {
		return errors.New("--to is required: the kubeconfig contexts of the target clusters, e.g. --to cluster1,cluster3")
	}
	seen := map[string]bool{}
	for _, t := range to {
		switch {
		case t == "":
			return errors.New("--to has an empty context name")
		case t == from:
			return fmt.Errorf("--to %s is also the source (--from); a cluster reaches its own Services directly", t)
		case seen[t]:
			return fmt.Errorf("--to names %s twice", t)
		}
		seen[t] = true
	}
	return nil
}

func validateClusterName(name string) error {
	if name == "" || strings.ContainsAny(name, ", ") {
		return fmt.Errorf("--from-cluster-name %q: the source cluster name must be non-empty without commas or spaces (it becomes an endpoint label value)", name)
	}
	return nil
}
