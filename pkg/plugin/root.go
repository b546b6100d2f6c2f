// Package plugin holds the commands of the kubectl plugin `kubectl mesh`.
// Each subcommand lives in its own file as an Options struct with
// Complete (I/O), Validate (pure) and Run (writes only to its streams).
package plugin

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
)

const rootLong = `Run one Istio mesh across many Kubernetes clusters.

kubectl mesh writes every cross-cluster object of Istio's replicated control
plane (".global") model correctly: shared-root certificates, DNS forwarding of
the global zone, gateways, and a ServiceEntry with a unique class-E VIP plus
the DestinationRules that make it land for every exported service, and routes
versions across clusters.`

const rootExample = `  # Show the plugin's version
  kubectl mesh version

  # Make httpbin in namespace bar of cluster2 callable from cluster1
  kubectl mesh export httpbin -n bar --from cluster2 --to cluster1

  # Send jason's requests to helloworld v2 and v3 of cluster2, the rest to v1
  kubectl mesh route helloworld -n hello --context cluster1 --when header:end-user=jason --to v2=70,v3=30 --otherwise v1`

// NewCmdMesh returns the root command `kubectl mesh`. The kubeconfig flags
// are bound once here, on the persistent flags, and shared by every
// subcommand.
func NewCmdMesh(streams genericiooptions.IOStreams) *cobra.Command {
	cf := cli.NewConfigFlags()
	return newCmdMesh(cf, cli.NewFactory(cf), streams)
}

// newCmdMesh builds the command tree on kubectl's flags getter and the
// factory every command takes its clients from (tests hand out fake
// clusters through it).
func newCmdMesh(getter *genericclioptions.ConfigFlags, f cli.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:           "kubectl mesh",
		Short:         "Run one Istio mesh across many Kubernetes clusters",
		Long:          rootLong,
		Example:       rootExample,
		SilenceErrors: false,
		SilenceUsage:  true,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl mesh",
		},
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	getter.AddFlags(cmd.PersistentFlags())

	cmd.AddCommand(
		NewCmdVersion(streams),
		NewCmdCerts(f, streams),
		NewCmdLink(f, streams), NewCmdUnlink(f, streams), NewCmdStatus(f, streams),
		NewCmdExport(f, streams), NewCmdUnexport(f, streams),
		NewCmdRoute(f, streams),
	)
	RegisterCompletions(cmd, f)
	return cmd
}
