package plugin

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/version"
)

const versionExample = `  # Print the plugin's version
  kubectl mesh version

  # Print it as JSON, e.g. for scripts
  kubectl mesh version -o json`

// VersionOptions are the options of `kubectl mesh version`.
type VersionOptions struct {
	PrintFlags *cli.PrintFlags

	info version.Info
	genericiooptions.IOStreams
}

// NewCmdVersion returns `kubectl mesh version`.
func NewCmdVersion(streams genericiooptions.IOStreams) *cobra.Command {
	o := &VersionOptions{IOStreams: streams, PrintFlags: cli.NewReportPrintFlags()}
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the version of kubectl mesh",
		Example: versionExample,
		Args:    cobra.NoArgs,
		RunE:    cli.RunE(o),
	}
	o.PrintFlags.AddFlags(cmd)
	return cmd
}

// Complete reads the version stamped into the binary.
func (o *VersionOptions) Complete(_ *cobra.Command, _ []string) error {
	o.info = version.Get()
	return nil
}

// Validate checks -o.
func (o *VersionOptions) Validate() error {
	return o.PrintFlags.Validate()
}

// Run prints the version.
func (o *VersionOptions) Run(context.Context) error {
	return o.PrintFlags.PrintReport(o.Out, o.info, func(out io.Writer) error {
		_, err := fmt.Fprintf(out, "kubectl-mesh %s (commit %s, %s, %s)\n", o.info.Version, o.info.Commit, o.info.GoVersion, o.info.Platform)
		return err
	})
}
