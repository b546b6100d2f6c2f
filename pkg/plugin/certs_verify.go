package plugin

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/certs"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
)

const certsVerifyExample = `  # Check the files in ./mesh-certs
  kubectl mesh certs verify

  # Check the cacerts Secrets of two clusters and that they share a root
  kubectl mesh certs verify --contexts cluster1,cluster2

  # The same as JSON, warning about anything expiring within 90 days
  kubectl mesh certs verify --contexts cluster1,cluster2 --warn-within 90d -o json`

// CertsVerifyOptions are the options of `kubectl mesh certs verify`.
type CertsVerifyOptions struct {
	Dir          string
	Contexts     []string
	ClusterNames []string
	WarnWithin   string
	PrintFlags   *cli.PrintFlags

	checkDir   bool
	warnWithin time.Duration
	targets    []certs.Target
	factory    cli.Factory
	now        func() time.Time
	genericiooptions.IOStreams
}

// NewCmdCertsVerify returns `kubectl mesh certs verify`.
func NewCmdCertsVerify(f cli.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &CertsVerifyOptions{IOStreams: streams, factory: f, now: time.Now, PrintFlags: cli.NewReportPrintFlags()}
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check certificate files and clusters' cacerts Secrets: chains, keys, expiry and a shared root",
		Long: `Check certificate files (--dir: <cluster>/{ca-cert,ca-key,root-cert,cert-chain}.pem,
as "certs intermediate" or Istio's tools/certs lay them out) and clusters'
cacerts Secrets (--contexts) the way istiod uses a plug-in CA.

Errors, which make verify exit non-zero, are what breaks a mesh: a key that
does not match its certificate, ca-cert.pem not verifying to root-cert.pem
through cert-chain.pem (as istiod verifies it: SHA-1 signatures fail), an
expired or not yet valid certificate, clusters that do not trust the roots
the others issue from. Warnings are what works but is weaker than what
kubectl mesh makes: no path length 0 on the intermediate, a cert-chain.pem
without the root, an intermediate valid for more than three years or
outliving its root, a SHA-1 root, anything expiring within --warn-within.
The root's key is never needed.`,
		Example: certsVerifyExample,
		Args:    cobra.NoArgs,
		RunE:    cli.RunE(o),
	}
	cmd.Flags().StringVar(&o.Dir, "dir", defaultCertsDir, "Directory made by \"certs root\" and \"certs intermediate\" to check.")
	cmd.Flags().StringSliceVar(&o.Contexts, "contexts", nil, "Check the cacerts Secret of these contexts: CTX or NAME=CTX, comma-separated.")
	cmd.Flags().StringSliceVar(&o.ClusterNames, "cluster-names", nil, "Cluster names for --contexts, in the same order.")
	cmd.Flags().StringVar(&o.WarnWithin, "warn-within", "30d", "Warn about certificates that expire within this time.")
	o.PrintFlags.AddFlags(cmd)
	return cmd
}

// Complete parses the flags.
func (o *CertsVerifyOptions) Complete(cmd *cobra.Command, _ []string) error {
	// Files are checked when --dir is given, or when there is nothing
	// else to check.
	o.checkDir = cmd.Flags().Changed("dir") || len(o.Contexts) == 0
	d, err := parseValidity("warn-within", o.WarnWithin)
	if err != nil {
		return err
	}
	o.warnWithin = d
	if len(o.Contexts) > 0 {
		if o.targets, err = parseClusterTargets(o.Contexts, o.ClusterNames); err != nil {
			return err
		}
		if err := o.factory.CheckContexts(targetContexts(o.targets)...); err != nil {
			return err
		}
	} else if len(o.ClusterNames) > 0 {
		return fmt.Errorf("--cluster-names goes with --contexts")
	}
	return nil
}

// Validate checks the flags.
func (o *CertsVerifyOptions) Validate() error {
	return o.PrintFlags.Validate()
}

// Run checks (see certs.Verify) and reports; any error makes it fail.
func (o *CertsVerifyOptions) Run(ctx context.Context) error {
	res := certs.Verify(ctx, o.factory, certs.VerifyRequest{Dir: o.Dir, CheckDir: o.checkDir, Targets: o.targets, WarnWithin: o.warnWithin, Now: o.now})
	if err := o.PrintFlags.PrintReport(o.Out, res, func(out io.Writer) error { return o.table(out, res) }); err != nil {
		return err
	}
	if !res.OK {
		return fmt.Errorf("certificate verification failed: %d problem(s)", len(res.Errors))
	}
	return nil
}

// table prints the reports, then what they add up to, the errors and the
// warnings.
func (o *CertsVerifyOptions) table(out io.Writer, res *certs.VerifyResult) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SOURCE\tROOTS\tISSUING ROOT\tINTERMEDIATE\tEXPIRES\tSTATUS")
	for _, r := range append(append([]*pki.Report{}, res.Files...), res.Clusters...) {
		inter, expires := "-", "-"
		if r.Intermediate != nil {
			inter = pki.Short(r.Intermediate.Fingerprint)
			expires = r.Intermediate.NotAfter.Format("2006-01-02")
		}
		issuing := "-"
		if r.IssuingRoot != "" {
			issuing = pki.Short(r.IssuingRoot)
		}
		status := "OK"
		switch {
		case !r.OK():
			status = fmt.Sprintf("FAIL (%d)", len(r.Errors))
		case len(r.Warnings) > 0:
			status = fmt.Sprintf("WARN (%d)", len(r.Warnings))
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", r.Source, len(r.Roots), issuing, inter, expires, status)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	var sb strings.Builder
	if len(res.Files) > 0 && len(res.Errors) == 0 {
		fmt.Fprintf(&sb, "%d cluster directories in %s chain to their roots and trust each other's\n", len(res.Files), o.Dir)
	}
	if len(res.Clusters) > 0 {
		switch len(res.SharedRoots) {
		case 0:
			sb.WriteString("clusters share no root\n")
		case 1:
			fmt.Fprintf(&sb, "all %d clusters share one root: %s\n", len(res.Clusters), res.SharedRoots[0])
		default:
			fmt.Fprintf(&sb, "all %d clusters trust %d roots (root rotation in progress): %s\n", len(res.Clusters), len(res.SharedRoots), strings.Join(res.SharedRoots, ", "))
		}
	}
	for _, e := range res.Errors {
		fmt.Fprintf(&sb, "error: %s\n", e)
	}
	for _, wn := range res.Warnings {
		fmt.Fprintf(&sb, "warning: %s\n", wn)
	}
	_, err := fmt.Fprint(out, sb.String())
	return err
}
