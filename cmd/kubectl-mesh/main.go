// Command kubectl-mesh is the kubectl plugin `kubectl mesh`.
package main

import (
	"context"
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // exec, OIDC and cloud auth plugins for kubeconfigs
	"k8s.io/client-go/rest"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/plugin"
)

func main() {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	// API servers' warnings (mesh-webhook's among them) as kubectl prints
	// them: "Warning: …" on stderr, once each.
	rest.SetDefaultWarningHandler(rest.NewWarningWriter(streams.ErrOut, rest.WarningWriterOptions{Deduplicate: true}))
	ctx, stop := cli.NotifyContext(context.Background())
	err := plugin.NewCmdMesh(streams).ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(1)
	}
}
