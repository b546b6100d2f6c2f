package plugin

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

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
	targets    []clusterTarget
	factory    cli.Factory
	now        func() time.Time
	genericiooptions.IOStreams
}

// VerifyResult is the outcome of `certs verify`, as printed by -o json.
type VerifyResult struct {
	OK bool `json:"ok"`
	// Files are the reports of the cluster directories under --dir.
	Files []*pki.Report `json:"files,omitempty"`
	// Clusters are the reports of the cacerts Secrets of --contexts.
	Clusters []*pki.Report `json:"clusters,omitempty"`
	// SharedRoots are the roots every cluster trusts.
	SharedRoots []string `json:"sharedRoots,omitempty"`
	Errors      []string `json:"errors,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
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

// Run checks and reports; any error makes it fail.
func (o *CertsVerifyOptions) Run(ctx context.Context) error {
	res := &VerifyResult{}
	now := o.now()
	if o.checkDir {
		reports, errs, warnings := o.verifyDir(now)
		res.Files = reports
		res.Errors = append(res.Errors, errs...)
		res.Warnings = append(res.Warnings, warnings...)
		_, shareErrs := pki.CheckShared(reports)
		res.Errors = append(res.Errors, shareErrs...)
	}
	if len(o.targets) > 0 {
		for _, t := range o.targets {
			r := &pki.Report{Source: t.Name}
			c, err := o.factory.Cluster(t.Context)
			if err == nil {
				var b *pki.Bundle
				if b, err = pki.ReadClusterBundle(ctx, c.Kube); err == nil {
					r = pki.VerifyBundle(t.Name, b, now, o.warnWithin)
				}
			}
			if err != nil {
				r.Errors = append(r.Errors, err.Error())
			}
			res.Clusters = append(res.Clusters, r)
		}
		shared, shareErrs := pki.CheckShared(res.Clusters)
		res.SharedRoots = shared
		res.Errors = append(res.Errors, shareErrs...)
	}
	for _, r := range append(append([]*pki.Report{}, res.Files...), res.Clusters...) {
		for _, e := range r.Errors {
			res.Errors = append(res.Errors, r.Source+": "+e)
		}
		for _, w := range r.Warnings {
			res.Warnings = append(res.Warnings, r.Source+": "+w)
		}
	}
	res.OK = len(res.Errors) == 0
	if err := o.PrintFlags.PrintReport(o.Out, res, func(out io.Writer) error { return o.table(out, res) }); err != nil {
		return err
	}
	if !res.OK {
		return fmt.Errorf("certificate verification failed: %d problem(s)", len(res.Errors))
	}
	return nil
}

// verifyDir checks the root of --dir and every cluster directory in it.
// The root's key is not needed (it is often kept offline); when it is
// there, a key that does not match is a warning: signing new intermediates
// will fail, the mesh does not.
func (o *CertsVerifyOptions) verifyDir(now time.Time) (reports []*pki.Report, errs, warnings []string) {
	rootPath := filepath.Join(o.Dir, pki.RootCertFile)
	var rootFP string
	if _, err := os.Stat(rootPath); err == nil {
		root, err := pki.LoadCACert(rootPath, now)
		if err != nil {
			errs = append(errs, err.Error())
		} else {
			rootFP = pki.Fingerprint(root.Cert)
			keyPath := filepath.Join(o.Dir, pki.RootKeyFile)
			if _, err := os.Stat(keyPath); err == nil {
				if err := root.LoadKey(keyPath); err != nil {
					warnings = append(warnings, err.Error()+"; `certs intermediate` and `certs rotate` cannot sign with it")
				}
			}
		}
	}
	clusters, err := clusterDirs(o.Dir)
	if err != nil {
		return nil, append(errs, err.Error()), warnings
	}
	if len(clusters) == 0 {
		errs = append(errs, fmt.Sprintf("%s holds no cluster directories (<cluster>/ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem); make them with `kubectl mesh certs intermediate CLUSTER…`", o.Dir))
	}
	for _, c := range clusters {
		dir := filepath.Join(o.Dir, c)
		b, err := pki.LoadBundle(dir)
		if err != nil {
			reports = append(reports, &pki.Report{Source: dir, Errors: []string{err.Error()}})
			continue
		}
		r := pki.VerifyBundle(dir, b, now, o.warnWithin)
		// Intermediates made here from now on would not be trusted by a
		// cluster whose root-cert.pem lacks the root of --dir (e.g. after
		// a --force re-run of `certs root`).
		if rootFP != "" && !slices.ContainsFunc(r.Roots, func(c pki.CertInfo) bool { return c.Fingerprint == rootFP }) {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s does not hold the root of %s (%s), so it will not trust intermediates made from that root; re-create it with `kubectl mesh certs intermediate %s --force`", pki.RootCertFile, rootPath, pki.Short(rootFP), c))
		}
		reports = append(reports, r)
	}
	return reports, errs, warnings
}

// table prints the reports, then what they add up to, the errors and the
// warnings.
func (o *CertsVerifyOptions) table(out io.Writer, res *VerifyResult) error {
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
