package plugin

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/certs"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
)

const certsInstallExample = `  # Install <dir>/cluster1 into the current context
  kubectl mesh certs install --cluster cluster1

  # Install into two contexts named after their clusters, restarting istiod
  kubectl mesh certs install --contexts cluster1,cluster2 --restart

  # Contexts whose names differ from the cluster directories
  kubectl mesh certs install --contexts east=gke_east,west=gke_west

  # Show the Secret without creating it
  kubectl mesh certs install --context cluster1 --dry-run=client -o yaml`

// CertsInstallOptions are the options of `kubectl mesh certs install`.
type CertsInstallOptions struct {
	Dir             string
	Cluster         string
	Contexts        []string
	ClusterNames    []string
	Force           bool
	BackupDir       string
	Restart         bool
	RestartGateways bool
	// DryRun is --dry-run, parsed by Complete.
	DryRun     cli.DryRun
	PrintFlags *cli.PrintFlags

	dryRunFlag string
	targets    []certs.Target
	bundles    map[string]*pki.Bundle
	factory    cli.Factory
	now        func() time.Time
	genericiooptions.IOStreams
}

// NewCmdCertsInstall returns `kubectl mesh certs install`.
func NewCmdCertsInstall(f cli.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &CertsInstallOptions{IOStreams: streams, factory: f, now: time.Now, PrintFlags: cli.NewPrintFlags("installed")}
	cmd := &cobra.Command{
		Use:     "install",
		Short:   "Create or update Istio's cacerts Secret in one or more clusters",
		Example: certsInstallExample,
		Args:    cobra.NoArgs,
		RunE:    cli.RunE(o),
	}
	cmd.Flags().StringVar(&o.Dir, "dir", defaultCertsDir, "Directory holding <cluster>/ with the files from \"certs intermediate\".")
	cmd.Flags().StringVar(&o.Cluster, "cluster", "", "Cluster whose files to install into --context (default: the context's name).")
	cmd.Flags().StringSliceVar(&o.Contexts, "contexts", nil, "Install into these contexts: CTX or NAME=CTX, comma-separated.")
	cmd.Flags().StringSliceVar(&o.ClusterNames, "cluster-names", nil, "Cluster names for --contexts, in the same order.")
	cmd.Flags().BoolVar(&o.Force, "force", false, "Replace an existing cacerts Secret that holds a different root or intermediate (not needed when the new files only add roots to the installed intermediate and roots).")
	cmd.Flags().StringVar(&o.BackupDir, "backup-dir", "", "Where a replaced cacerts Secret is saved first, one 0600 file per cluster (default <dir>/backups).")
	cmd.Flags().BoolVar(&o.Restart, "restart", false, "Restart istiod afterwards so that it loads the new CA.")
	cmd.Flags().BoolVar(&o.RestartGateways, "restart-gateways", false, "With --restart, also restart the ingress and egress gateways.")
	cli.AddDryRunFlag(cmd, &o.dryRunFlag)
	o.PrintFlags.AddFlags(cmd)
	cmd.Flags().Lookup("output").Usage += " Prints the Secrets: the only output that contains the private key."
	return cmd
}

// Complete parses --dry-run, resolves the clusters and reads their files:
// files that do not verify are refused before any cluster is asked.
func (o *CertsInstallOptions) Complete(_ *cobra.Command, _ []string) error {
	d, err := cli.ParseDryRun(o.dryRunFlag)
	if err != nil {
		return err
	}
	o.DryRun = d
	if o.targets, err = o.completeTargets(); err != nil {
		return err
	}
	if err := o.factory.CheckContexts(targetContexts(o.targets)...); err != nil {
		return err
	}
	o.bundles, err = certs.LoadBundles(o.Dir, o.targets, o.now())
	return err
}

// completeTargets reads --contexts and --cluster-names, or without them
// --cluster and the current context.
func (o *CertsInstallOptions) completeTargets() ([]certs.Target, error) {
	if len(o.Contexts) > 0 {
		if o.Cluster != "" {
			return nil, fmt.Errorf("--cluster names the cluster of --context; with --contexts use NAME=CTX or --cluster-names")
		}
		return parseClusterTargets(o.Contexts, o.ClusterNames)
	}
	if len(o.ClusterNames) > 0 {
		return nil, fmt.Errorf("--cluster-names goes with --contexts; for one context use --cluster")
	}
	ctx, err := o.factory.CurrentContext()
	if err != nil {
		return nil, err
	}
	name := o.Cluster
	if name == "" {
		name = ctx
	}
	return []certs.Target{{Name: name, Context: ctx}}, nil
}

// Validate checks the flags.
func (o *CertsInstallOptions) Validate() error {
	if err := o.PrintFlags.Validate(); err != nil {
		return err
	}
	if o.RestartGateways && !o.Restart {
		return fmt.Errorf("--restart-gateways restarts the gateways after istiod; pass --restart too")
	}
	for _, t := range o.targets {
		if err := validateCertsClusterName(t.Name); err != nil {
			return fmt.Errorf("--cluster: %w", err)
		}
	}
	return nil
}

// Run installs the Secrets (see certs.Install) and, with -o, prints them.
func (o *CertsInstallOptions) Run(ctx context.Context) error {
	msg := o.Out
	if !o.PrintFlags.Table() {
		// stdout carries only the objects so that it can be piped.
		msg = o.ErrOut
	}
	secrets, err := certs.Install(ctx, o.factory, certs.InstallRequest{
		Dir: o.Dir, BackupDir: o.BackupDir, Targets: o.targets, Bundles: o.bundles,
		Force: o.Force, Restart: o.Restart, RestartGateways: o.RestartGateways,
		DryRun: o.DryRun, Now: o.now, Messages: msg,
	})
	if err != nil {
		return err
	}
	printed := make([]runtime.Object, 0, len(secrets))
	for _, s := range secrets {
		printed = append(printed, s)
	}
	// Without -o the messages were the whole output.
	return o.PrintFlags.PrintObjects(o.Out, printed, func(io.Writer) error { return nil })
}
