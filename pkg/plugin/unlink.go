package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/link"
)

const unlinkLong = `Undo "kubectl mesh link --from CTX1 --to CTX2".

unlink reads the link record in CTX1's mesh-system namespace and removes
exactly what link added: the global DNS block or stub domain (the ConfigMap
gets back its original text, byte for byte), the DNS proxying setting of
--enable-dns-capture (the mesh config gets back its text, or, when someone
edited it since, just that setting), what --multi-primary added, and the
record. This works as well after a link that failed or was interrupted:
its record says what it may have changed, and what it never got to write
is left alone. DNS changes stay while another link of CTX1 still needs
them. The
*.local Gateway in CTX2 stays: other clusters may call through it; a
*.global Gateway that an older version of link wrote there is removed.

Of --multi-primary: the remote secret in CTX1, the token binding Secret in
CTX2 (which revokes the token), kubectl-mesh's reader ServiceAccount,
ClusterRole and ClusterRoleBinding in CTX2 when no other caller's token
uses them (Istio's reader stays), and the network labels link set, put back
as they were, once neither cluster is part of another multi-primary link.
With --multi-primary, unlink removes only that and keeps the rest of the
link.`

const unlinkExample = `  # Stop cluster1 calling cluster2
  kubectl mesh unlink --from cluster1 --to cluster2

  # See what would be removed
  kubectl mesh unlink --from cluster1 --to cluster2 --dry-run=client

  # Stop cluster1's istiod reading cluster2, keep the rest of the link
  kubectl mesh unlink --from cluster1 --to cluster2 --multi-primary`

// UnlinkOptions are the options of `kubectl mesh unlink`.
type UnlinkOptions struct {
	From, To      string
	Bidirectional bool
	// MultiPrimary undoes only what --multi-primary added and keeps the
	// rest of the link.
	MultiPrimary bool
	PrintFlags   *cli.PrintFlags

	dryRunFlag string
	dryRun     cli.DryRun // parsed in Complete

	factory cli.Factory
	genericiooptions.IOStreams
}

// NewUnlinkOptions returns options with the defaults.
func NewUnlinkOptions(f cli.Factory, streams genericiooptions.IOStreams) *UnlinkOptions {
	return &UnlinkOptions{factory: f, IOStreams: streams, PrintFlags: cli.NewPrintFlags("unlinked")}
}

// NewCmdUnlink returns `kubectl mesh unlink`.
func NewCmdUnlink(f cli.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdUnlink(NewUnlinkOptions(f, streams))
}

func newCmdUnlink(o *UnlinkOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "unlink --from CONTEXT --to CONTEXT",
		Short:   "Remove what kubectl mesh link added between two clusters",
		Long:    unlinkLong,
		Example: unlinkExample,
		Args:    cobra.NoArgs,
		RunE:    cli.RunE(o),
	}
	fl := cmd.Flags()
	fl.StringVar(&o.From, "from", "", "Context of the calling cluster (holds the link record).")
	fl.StringVar(&o.To, "to", "", "Context of the called cluster.")
	fl.BoolVar(&o.Bidirectional, "bidirectional", false, "Unlink both ways.")
	fl.BoolVar(&o.MultiPrimary, "multi-primary", false, "Remove only what link --multi-primary added (remote secret, reader token and, when no other link uses them, the reader RBAC and network labels) and keep the rest of the link.")
	cli.AddDryRunFlag(cmd, &o.dryRunFlag)
	o.PrintFlags.AddFlags(cmd)
	return cmd
}

// Complete parses --dry-run and checks that kubectl's cluster flags name
// one of the two contexts.
func (o *UnlinkOptions) Complete(_ *cobra.Command, _ []string) error {
	var err error
	if o.dryRun, err = cli.ParseDryRun(o.dryRunFlag); err != nil {
		return err
	}
	return o.factory.CheckContexts(o.From, o.To)
}

// Validate checks the flags.
func (o *UnlinkOptions) Validate() error {
	if o.From == "" || o.To == "" {
		return errors.New("both --from and --to are required, as given to kubectl mesh link")
	}
	if o.From == o.To {
		return fmt.Errorf("--from and --to are both %q; name the two linked clusters", o.From)
	}
	return o.PrintFlags.Validate()
}

// Run unlinks; a direction that fails does not stop the other.
func (o *UnlinkOptions) Run(ctx context.Context) error {
	log := newStepLog(o.IOStreams, o.PrintFlags, o.dryRun)
	u := &link.Unlinker{DryRun: o.dryRun, MultiPrimaryOnly: o.MultiPrimary, Log: log}
	pairs := [][2]string{{o.From, o.To}}
	if o.Bidirectional {
		pairs = append(pairs, [2]string{o.To, o.From})
	}
	var errs []error
	for _, p := range pairs {
		from, err := o.factory.Cluster(p[0])
		if err != nil {
			errs = append(errs, fmt.Errorf("--from: %w", err))
			continue
		}
		// The peer may be gone from the kubeconfig: unlink still undoes
		// what it can in --from.
		to := link.Peer{Context: p[1]}
		to.Cluster, to.Err = o.factory.Cluster(p[1])
		if err := u.Unlink(ctx, from, to); err != nil {
			errs = append(errs, err)
		}
	}
	if err := printStepObjects(o.Out, o.PrintFlags, log); err != nil {
		errs = append(errs, err)
	}
	return cli.WithInterrupt(ctx, "unlink", errors.Join(errs...))
}
