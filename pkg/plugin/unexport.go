package plugin

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/export"
)

const unexportLong = `Undo kubectl mesh export for one source cluster.

In every target cluster, unexport removes the --from cluster's endpoint from
the Service's .global ServiceEntry and its subsets from the DestinationRule.
When no endpoint is left it deletes both objects and frees the entry's VIP
claim. In the source cluster it deletes the version DestinationRule once no
target is left. Objects not labelled app.kubernetes.io/managed-by=kubectl-mesh
are never touched.`

const unexportExample = `  # Stop exporting httpbin of cluster2 to cluster1
  kubectl mesh unexport httpbin -n bar --from cluster2 --to cluster1

  # Remove cluster3's endpoint of helloworld; cluster2's stays
  kubectl mesh unexport helloworld -n hello --from cluster3 --to cluster1

  # Everything exported from namespace shop of east
  kubectl mesh unexport --all -n shop --from east --to west,north`

// UnexportOptions are the options of `kubectl mesh unexport`.
type UnexportOptions struct {
	exportScope
	All bool
	genericiooptions.IOStreams
}

// NewUnexportOptions returns options with kubectl's defaults.
func NewUnexportOptions(f cli.Factory, streams genericiooptions.IOStreams) *UnexportOptions {
	return &UnexportOptions{exportScope: exportScope{PrintFlags: cli.NewPrintFlags("unexported"), factory: f}, IOStreams: streams}
}

// NewCmdUnexport returns `kubectl mesh unexport`.
func NewCmdUnexport(f cli.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewUnexportOptions(f, streams)
	cmd := &cobra.Command{
		Use:     "unexport (SERVICE... | --all) -n NAMESPACE --from CONTEXT --to CONTEXT[,CONTEXT...]",
		Short:   "Remove a source cluster's endpoint of exported Services, and the objects export wrote",
		Long:    unexportLong,
		Example: unexportExample,
		RunE:    cli.RunE(o),
	}
	fl := cmd.Flags()
	fl.BoolVar(&o.All, "all", false, "Unexport every Service of the namespace exported from --from.")
	o.addFlags(cmd, "in endpoint labels", "of the ServiceEntries")
	return cmd
}

// Complete reads the namespace and defaults, resolves the contexts and
// parses --dry-run.
func (o *UnexportOptions) Complete(_ *cobra.Command, args []string) error {
	return o.complete(args)
}

// Validate checks the flags.
func (o *UnexportOptions) Validate() error {
	if len(o.Services) > 0 && o.All || len(o.Services) == 0 && !o.All {
		return errors.New("name the Services to unexport (SERVICE...) or pass --all")
	}
	if err := validateServiceArgs(o.Services, "", o.All); err != nil {
		return err
	}
	if err := validateTargets(o.From, o.To); err != nil {
		return err
	}
	if err := o.PrintFlags.Validate(); err != nil {
		return err
	}
	return validateClusterName(o.FromClusterName)
}

// Run unexports and prints the outcome.
func (o *UnexportOptions) Run(ctx context.Context) error {
	res := export.Unexport(ctx, o.factory, export.UnexportRequest{
		From: o.From, To: o.To, Services: o.Services, All: o.All,
		Namespace: o.namespace, TargetNamespace: o.TargetNamespace, ClusterName: o.FromClusterName,
		DryRun: o.dryRun,
	})
	if err := cli.PrintRows(o.Out, o.PrintFlags, res.Rows, o.dryRun.Suffix()); err != nil {
		return err
	}
	return res.Err
}
