package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/status"
)

const statusLong = `Report the health of the whole mesh in one screen.

For every cluster: the root of its Istio CA and whether all roots match,
when its intermediate expires, istiocoredns and DNS forwarding of the global
zone (or, without istiocoredns, Istio's DNS proxying), its gateway address,
mesh-webhook, and the services exported into it.
For every link: the peer's gateway and whether the peer answers. Then the
problems, each with its object and the fix: duplicate VIPs, VIPs outside
the class-E rules, stale .global entries, endpoints that no longer point at
the source cluster's gateway, .global subsets that select nothing, .global
names no DNS answers, VirtualService routes to subsets no DestinationRule
defines, locality policies that do nothing (failover without outlier
detection, dropped by a port-level setting, on endpoints without locality),
and unreachable peers. Then every route: for each port and subset of every
.global entry, the SNI the caller sends, the source gateway and Gateway
that take it, and the source Service it lands on, with the problems of
routes that land nowhere (plain text or the default SNI, no *.local
AUTO_PASSTHROUGH server on the gateway's pods, a missing Service, port or
subset in the source).
For multi-primary meshes, every remote secret (Secrets labelled
istio/multiCluster: "true", whoever wrote them) is asked of the server it
names, as its token: whether the server answers and accepts the token,
whether the token may list Services and EndpointSlices and read Secrets,
and when it expires (a warning within 30 days); and the mesh: cluster names
unique and the peers' own, mesh IDs and roots the same, every cluster
labelled with its network, and every peer on another network reached
through a gateway of that network with a *.local AUTO_PASSTHROUGH server.
The exit code is 1 when there is a problem (not for warnings), so status
can gate CI.`

const statusExample = `  # Every context of the kubeconfig that has istio-system
  kubectl mesh status

  # Some clusters, as JSON
  kubectl mesh status --contexts cluster1,cluster2 -o json`

// StatusOptions are the options of `kubectl mesh status`.
type StatusOptions struct {
	Contexts   []string
	Timeout    time.Duration
	PrintFlags *cli.PrintFlags

	// factory gives every client; the engine gives them the timeout.
	factory cli.Factory
	// contexts are the clusters to report on; explicit says the user
	// named them, so that one that cannot be read is an error rather
	// than left out.
	contexts []string
	explicit bool
	genericiooptions.IOStreams
}

// NewCmdStatus returns `kubectl mesh status`.
func NewCmdStatus(f cli.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &StatusOptions{factory: f, IOStreams: streams, Timeout: 5 * time.Second, PrintFlags: cli.NewReportPrintFlags()}
	cmd := &cobra.Command{
		Use:     "status [--contexts CTX1,CTX2,...]",
		Short:   "Report the health of the mesh across clusters; exit 1 on problems",
		Long:    statusLong,
		Example: statusExample,
		Args:    cobra.NoArgs,
		RunE:    cli.RunE(o),
	}
	cmd.Flags().StringSliceVar(&o.Contexts, "contexts", nil, "Contexts to report on (default: every context of the kubeconfig whose cluster has istio-system).")
	cmd.Flags().DurationVar(&o.Timeout, "peer-timeout", o.Timeout, "How long to wait for a cluster or linked peer to answer.")
	o.PrintFlags.AddFlags(cmd)
	return cmd
}

// Complete resolves the contexts to report on: --contexts, else every
// context of the kubeconfig.
func (o *StatusOptions) Complete(_ *cobra.Command, _ []string) error {
	o.contexts, o.explicit = o.Contexts, len(o.Contexts) > 0
	if !o.explicit {
		all, err := o.factory.Contexts()
		if err != nil {
			return err
		}
		o.contexts = all
	}
	return o.factory.CheckContexts(o.contexts...)
}

// Validate checks the flags.
func (o *StatusOptions) Validate() error {
	if o.Timeout <= 0 {
		return fmt.Errorf("--peer-timeout must be positive")
	}
	for _, c := range o.Contexts {
		if c == "" {
			return errors.New("--contexts has an empty name; list contexts separated by commas")
		}
	}
	return o.PrintFlags.Validate()
}

// Run has the engine fetch what every cluster holds and check it, and
// prints the report; it returns an error when there are problems so that
// the exit code is 1.
func (o *StatusOptions) Run(ctx context.Context) error {
	rep, err := status.Gather(ctx, o.factory, status.Request{Contexts: o.contexts, Explicit: o.explicit, Timeout: o.Timeout})
	switch {
	case errors.Is(err, status.ErrNoCluster):
		return fmt.Errorf("%w; pass --contexts", err)
	case err != nil && o.explicit:
		return fmt.Errorf("--contexts: %w", err)
	case err != nil:
		return err
	}
	if err := o.PrintFlags.PrintReport(o.Out, rep, func(out io.Writer) error { return status.PrintTable(out, rep) }); err != nil {
		return err
	}
	if n := len(rep.Problems); n > 0 {
		return fmt.Errorf("%d problem(s) found", n)
	}
	return nil
}
