package cli

import (
	"context"

	"github.com/spf13/cobra"
)

// Options is what the options of every command implement, in kubectl's
// order: Complete fills in what the flags and the kubeconfig say (it may
// read; --dry-run is parsed here, once), Validate checks the result without
// I/O and names the flag to fix, Run does the work and writes only to the
// command's streams.
type Options interface {
	Complete(cmd *cobra.Command, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// RunE runs o's Complete, Validate and Run in that order: the RunE of every
// command.
func RunE(o Options) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(cmd, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}
