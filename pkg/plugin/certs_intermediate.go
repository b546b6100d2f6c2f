package plugin

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

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
	root     *pki.CA // its key is read only to sign, in Run
	rootKey  string
	roots    []byte
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
	certPath, keyPath := o.RootCert, o.RootKey
	if certPath == "" {
		certPath, keyPath = filepath.Join(o.Dir, pki.RootCertFile), filepath.Join(o.Dir, pki.RootKeyFile)
	}
	if o.root, err = pki.LoadCACert(certPath, o.now()); err != nil {
		return err
	}
	o.rootKey = keyPath
	o.roots = o.root.CertPEM
	// During a root rotation, clusters must trust the old and the new root
	// until every cluster issues from the new one.
	if o.RootCert == "" {
		if t, err := os.ReadFile(filepath.Join(o.Dir, pki.TransitionRootFile)); err == nil {
			o.roots = t
		}
	}
	if o.KeyAlgorithm == "" {
		switch o.root.Cert.PublicKeyAlgorithm {
		case x509.ECDSA:
			o.KeyAlgorithm = pki.KeyECDSA
		case x509.RSA:
			o.KeyAlgorithm = pki.KeyRSA
		}
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

// IntermediateResult is what `certs intermediate` and `certs rotate`
// wrote, as -o prints it.
type IntermediateResult struct {
	Dir      string                `json:"dir"`
	Clusters []IntermediateWritten `json:"clusters"`
}

// IntermediateWritten is one cluster's new intermediate.
type IntermediateWritten struct {
	Cluster      string       `json:"cluster"`
	Dir          string       `json:"dir"`
	Intermediate pki.CertInfo `json:"intermediate"`
	// CappedAtRoot says the validity was cut to the root's expiry.
	CappedAtRoot bool `json:"cappedAtRoot,omitempty"`
	// Replaces is the fingerprint of the intermediate rotate replaced.
	Replaces string `json:"replaces,omitempty"`
}

// Run makes and writes the intermediates. Every refusal (existing files
// without --force, missing ones for rotate) is checked before anything is
// written; an interrupt stops it before the next cluster's files.
func (o *CertsIntermediateOptions) Run(ctx context.Context) error {
	if err := o.refuse(); err != nil {
		return err
	}
	if err := o.root.LoadKey(o.rootKey); err != nil {
		return err
	}
	res := IntermediateResult{Dir: o.Dir}
	for i, c := range o.Clusters {
		w, err := o.write(ctx, i, c)
		if err != nil {
			return err
		}
		res.Clusters = append(res.Clusters, w)
		if o.PrintFlags.Table() {
			// Each cluster as it is written: when a later one fails, the
			// output still shows what was.
			if err := printIntermediate(o.Out, w); err != nil {
				return err
			}
		}
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

// refuse checks, before anything is written, that every cluster's files
// may be written: absent (or --force) for intermediate, present for
// rotate.
func (o *CertsIntermediateOptions) refuse() error {
	for _, c := range o.Clusters {
		dir := filepath.Join(o.Dir, c)
		_, err := os.Stat(filepath.Join(dir, pki.CACertFile))
		switch {
		case o.rotate && err != nil:
			return fmt.Errorf("%s not found: cluster %s has no intermediate to rotate; make one with `kubectl mesh certs intermediate %s`", filepath.Join(dir, pki.CACertFile), c, c)
		case !o.rotate && !o.Force && err == nil:
			return fmt.Errorf("%s already exists; pass --force to replace it, or use `kubectl mesh certs rotate %s`", filepath.Join(dir, pki.CACertFile), c)
		}
	}
	return nil
}

// write makes the intermediate of the i-th cluster and writes its files.
func (o *CertsIntermediateOptions) write(ctx context.Context, i int, c string) (IntermediateWritten, error) {
	if err := stopped(ctx, o.Clusters[:i], o.Clusters[i:]); err != nil {
		return IntermediateWritten{}, err
	}
	dir := filepath.Join(o.Dir, c)
	w := IntermediateWritten{Cluster: c, Dir: dir}
	if o.rotate {
		if b, err := pki.LoadBundle(dir); err == nil {
			if inter, err := b.Intermediate(); err == nil {
				w.Replaces = pki.Fingerprint(inter)
			}
		}
	}
	inter, err := pki.NewIntermediate(o.root, pki.IntermediateRequest{Cluster: c, Org: o.Org, Validity: o.validity, Key: pki.KeySpec{Algorithm: o.KeyAlgorithm, Size: o.KeySize}}, o.now())
	if err != nil {
		return w, err
	}
	if err := stopped(ctx, o.Clusters[:i], o.Clusters[i:]); err != nil {
		return w, err
	}
	if err := pki.WriteFiles(dir, pki.BundleFiles(pki.NewBundle(inter, o.root.Cert, o.roots)), o.Force || o.rotate); err != nil {
		return w, err
	}
	w.Intermediate = certInfo(inter.Cert)
	w.CappedAtRoot = inter.Cert.NotAfter.Equal(o.root.Cert.NotAfter)
	return w, nil
}

func printIntermediate(out io.Writer, w IntermediateWritten) error {
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
