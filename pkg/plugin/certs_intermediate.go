package plugin

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/certs"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
)

const certsIntermediateExample = `  # Intermediates for two clusters from the root in ./mesh-certs
  kubectl mesh certs intermediate cluster1 cluster2

  # From an organisation's own CA instead
  kubectl mesh certs intermediate cluster1 --root-cert ca.pem --root-key ca-key.pem`

// CertsIntermediateOptions are the options of `kubectl mesh certs
// intermediate` and `kubectl mesh certs rotate`.
type CertsIntermediateOptions struct {
	Clusters     []string
	Dir          string
	RootCert     string
	RootKey      string
	KeyAlgorithm string
	KeySize      int
	Validity     string
	Org          string
	Force        bool
	PrintFlags   *cli.PrintFlags

	// rotate requires an existing intermediate and replaces it.
	rotate   bool
	validity time.Duration
	issuer   *certs.Issuer // its key is read only to sign, in Run
	now      func() time.Time
	genericiooptions.IOStreams
}

// NewCmdCertsIntermediate returns `kubectl mesh certs intermediate`.
func NewCmdCertsIntermediate(streams genericiooptions.IOStreams) *cobra.Command {
	o := &CertsIntermediateOptions{IOStreams: streams, now: time.Now, PrintFlags: cli.NewReportPrintFlags()}
	cmd := &cobra.Command{
		Use:     "intermediate CLUSTER [CLUSTER…]",
		Short:   "Create one intermediate CA per cluster, signed by the root",
		Long:    "Create one intermediate CA per cluster, signed by the root, in <dir>/<cluster>/: ca-cert.pem, ca-key.pem, root-cert.pem and cert-chain.pem (intermediate then root), the files of Istio's cacerts Secret.",
		Example: certsIntermediateExample,
		Args:    cobra.MinimumNArgs(1),
		RunE:    cli.RunE(o),
	}
	o.addFlags(cmd)
	return cmd
}

// NewCmdCertsRotate returns `kubectl mesh certs rotate`.
func NewCmdCertsRotate(streams genericiooptions.IOStreams) *cobra.Command {
	o := &CertsIntermediateOptions{IOStreams: streams, now: time.Now, rotate: true, PrintFlags: cli.NewReportPrintFlags()}
	cmd := &cobra.Command{
		Use:   "rotate CLUSTER [CLUSTER…]",
		Short: "Replace a cluster's intermediate CA with a new one (new key) under the root",
		Example: `  # New intermediate for cluster1, then install it and restart istiod
  kubectl mesh certs rotate cluster1
  kubectl mesh certs install --context cluster1 --force --restart`,
		Args: cobra.MinimumNArgs(1),
		RunE: cli.RunE(o),
	}
	o.addFlags(cmd)
	return cmd
}

func (o *CertsIntermediateOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.Dir, "dir", defaultCertsDir, "Directory holding the root; each cluster's files go to <dir>/<cluster>/.")
	cmd.Flags().StringVar(&o.RootCert, "root-cert", "", "Root CA certificate (default <dir>/root-cert.pem).")
	cmd.Flags().StringVar(&o.RootKey, "root-key", "", "Root CA private key (default <dir>/root-key.pem).")
	cmd.Flags().StringVar(&o.KeyAlgorithm, "key-algorithm", "", "Key algorithm: rsa or ecdsa (default: the root's).")
	cmd.Flags().IntVar(&o.KeySize, "key-size", 0, "Key size: 2048, 3072 or 4096 for rsa (default 4096); 256 or 384 for ecdsa (default 256).")
	cmd.Flags().StringVar(&o.Validity, "validity", "2y", "How long the intermediate is valid; never beyond the root's expiry.")
	cmd.Flags().StringVar(&o.Org, "org", pki.DefaultOrg, "Organization (O) of the intermediate's subject.")
	if !o.rotate {
		cmd.Flags().BoolVar(&o.Force, "force", false, "Overwrite existing files.")
	}
	o.PrintFlags.AddFlags(cmd)
}

// Complete reads the root certificate (not its key: that is needed only to
// sign, and may be kept offline) and parses the flags.
func (o *CertsIntermediateOptions) Complete(_ *cobra.Command, args []string) error {
	o.Clusters = args
	d, err := parseValidity("validity", o.Validity)
	if err != nil {
		return err
	}
	o.validity = d
	if (o.RootCert == "") != (o.RootKey == "") {
		return fmt.Errorf("--root-cert and --root-key go together; pass both, or neither to use the root in --dir")
	}
	if o.issuer, err = certs.LoadIssuer(o.Dir, o.RootCert, o.RootKey, o.now()); err != nil {
		return err
	}
	if o.KeyAlgorithm == "" {
		o.KeyAlgorithm = o.issuer.KeyAlgorithm()
	}
	return nil
}

// Validate checks the flags and cluster names.
func (o *CertsIntermediateOptions) Validate() error {
	seen := map[string]bool{}
	for _, c := range o.Clusters {
		if err := validateCertsClusterName(c); err != nil {
			return err
		}
		if seen[c] {
			return fmt.Errorf("cluster %q is listed twice; list each cluster once", c)
		}
		seen[c] = true
	}
	if err := o.PrintFlags.Validate(); err != nil {
		return err
	}
	return pki.KeySpec{Algorithm: o.KeyAlgorithm, Size: o.KeySize}.Validate()
}

// Run makes and writes the intermediates (see certs.Intermediates). The
// table shows each cluster as it is written: when a later one fails, it
// still shows what was.
func (o *CertsIntermediateOptions) Run(ctx context.Context) error {
	req := certs.IntermediateRequest{
		Dir: o.Dir, Clusters: o.Clusters, Issuer: o.issuer, Rotate: o.rotate, Force: o.Force,
		Org: o.Org, Validity: o.validity, Key: pki.KeySpec{Algorithm: o.KeyAlgorithm, Size: o.KeySize}, Now: o.now,
	}
	if o.PrintFlags.Table() {
		req.Written = func(w certs.IntermediateWritten) error { return printIntermediate(o.Out, w) }
	}
	res, err := certs.Intermediates(ctx, req)
	if err != nil {
		return err
	}
	next := "next: kubectl mesh certs install --contexts CTX… --dir " + o.Dir
	if o.rotate {
		next += " --force --restart"
	}
	return o.PrintFlags.PrintReport(o.Out, res, func(out io.Writer) error {
		_, err := fmt.Fprintln(out, next)
		return err
	})
}

func printIntermediate(out io.Writer, w certs.IntermediateWritten) error {
	capped := ""
	if w.CappedAtRoot {
		capped = " (capped at the root's expiry)"
	}
	if _, err := fmt.Fprintf(out, "wrote intermediate CA for %s to %s\n  fingerprint %s\n  valid until %s%s\n", w.Cluster, w.Dir, w.Intermediate.Fingerprint, w.Intermediate.NotAfter.Format(time.RFC3339), capped); err != nil {
		return err
	}
	if w.Replaces != "" {
		if _, err := fmt.Fprintf(out, "  replaces %s\n", w.Replaces); err != nil {
			return err
		}
	}
	return nil
}
