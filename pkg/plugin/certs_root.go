package plugin

import (
	"context"
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

const certsRootExample = `  # A new RSA-4096 root valid for 10 years in ./mesh-certs
  kubectl mesh certs root

  # An ECDSA P-256 root for organisation Example in ./pki
  kubectl mesh certs root --dir ./pki --key-algorithm ecdsa --org Example

  # Rotate the root: keep the old one, write a new one and a transition bundle
  kubectl mesh certs root --rotate`

const rotationSteps = `Root rotation, in this order:
  1. kubectl mesh certs install --contexts … --restart   (only adds trust: no --force)
     every cluster now trusts both roots (its root-cert.pem is the transition bundle)
     while it still issues from its old intermediate; wait until workloads restarted.
  2. kubectl mesh certs rotate CLUSTER…   (new intermediates from the new root)
     kubectl mesh certs install --contexts … --force --restart
  3. kubectl mesh certs root --finish-rotation
     kubectl mesh certs install --contexts … --force --restart
     every cluster now trusts only the new root.
Check each step with: kubectl mesh certs verify --contexts …`

// CertsRootOptions are the options of `kubectl mesh certs root`.
type CertsRootOptions struct {
	Dir            string
	KeyAlgorithm   string
	KeySize        int
	Validity       string
	Org            string
	CommonName     string
	Force          bool
	Rotate         bool
	FinishRotation bool
	PrintFlags     *cli.PrintFlags

	validity time.Duration
	now      func() time.Time
	genericiooptions.IOStreams
}

// NewCmdCertsRoot returns `kubectl mesh certs root`.
func NewCmdCertsRoot(streams genericiooptions.IOStreams) *cobra.Command {
	o := &CertsRootOptions{IOStreams: streams, now: time.Now, PrintFlags: cli.NewReportPrintFlags()}
	cmd := &cobra.Command{
		Use:     "root",
		Short:   "Create the mesh's root CA (root-cert.pem, root-key.pem)",
		Example: certsRootExample,
		Args:    cobra.NoArgs,
		RunE:    cli.RunE(o),
	}
	cmd.Flags().StringVar(&o.Dir, "dir", defaultCertsDir, "Directory for the root's files.")
	cmd.Flags().StringVar(&o.KeyAlgorithm, "key-algorithm", pki.KeyRSA, "Key algorithm: rsa or ecdsa.")
	cmd.Flags().IntVar(&o.KeySize, "key-size", 0, "Key size: 2048, 3072 or 4096 for rsa (default 4096); 256 or 384 for ecdsa (default 256).")
	cmd.Flags().StringVar(&o.Validity, "validity", "10y", "How long the root is valid, e.g. 10y, 3650d or 87600h.")
	cmd.Flags().StringVar(&o.Org, "org", pki.DefaultOrg, "Organization (O) of the root's subject.")
	cmd.Flags().StringVar(&o.CommonName, "common-name", pki.DefaultRootCommonName, "Common name (CN) of the root's subject.")
	cmd.Flags().BoolVar(&o.Force, "force", false, "Overwrite existing files.")
	cmd.Flags().BoolVar(&o.Rotate, "rotate", false, "Replace the root in --dir: keep the old one as previous-root-*.pem and write a transition bundle trusting both. Refused while a rotation is in progress: the previous root is never overwritten, not even with --force.")
	cmd.Flags().BoolVar(&o.FinishRotation, "finish-rotation", false, "End a root rotation: drop the previous root and the transition bundle once every cluster issues from the new root.")
	o.PrintFlags.AddFlags(cmd)
	return cmd
}

// Complete parses the validity.
func (o *CertsRootOptions) Complete(_ *cobra.Command, _ []string) error {
	d, err := parseValidity("validity", o.Validity)
	if err != nil {
		return err
	}
	o.validity = d
	return nil
}

// Validate checks the flags.
func (o *CertsRootOptions) Validate() error {
	if o.Dir == "" {
		return fmt.Errorf("--dir must not be empty")
	}
	if o.Rotate && o.FinishRotation {
		return fmt.Errorf("--rotate and --finish-rotation are separate steps; pass one of them")
	}
	if err := o.PrintFlags.Validate(); err != nil {
		return err
	}
	return pki.KeySpec{Algorithm: o.KeyAlgorithm, Size: o.KeySize}.Validate()
}

// Run writes the root (or rotates it). An interrupt during the key
// generation stops it before anything is written.
func (o *CertsRootOptions) Run(ctx context.Context) error {
	switch {
	case o.Rotate:
		return o.rotate(ctx)
	case o.FinishRotation:
		return o.finishRotation()
	}
	root, err := pki.NewRoot(o.request())
	if err != nil {
		return err
	}
	if err := stopped(ctx, nil, nil); err != nil {
		return err
	}
	if err := pki.WriteFiles(o.Dir, pki.RootFiles(root), o.Force); err != nil {
		return err
	}
	res := RootResult{Dir: o.Dir, Root: certInfo(root.Cert)}
	return o.PrintFlags.PrintReport(o.Out, res, func(out io.Writer) error {
		_, err := fmt.Fprintf(out, "wrote root CA %q to %s (%s, %s)\n  fingerprint %s\n  valid until %s\nnext: kubectl mesh certs intermediate CLUSTER… --dir %s\n",
			root.Cert.Subject.CommonName, o.Dir, pki.RootCertFile, pki.RootKeyFile, pki.Fingerprint(root.Cert), root.Cert.NotAfter.UTC().Format(time.RFC3339), o.Dir)
		return err
	})
}

// RootResult is what `certs root` wrote, as -o prints it.
type RootResult struct {
	Dir string `json:"dir"`
	// Root is the root of Dir now.
	Root pki.CertInfo `json:"root"`
	// Previous is the root a rotation replaced, kept in
	// previous-root-cert.pem until the rotation is finished.
	Previous *pki.CertInfo `json:"previous,omitempty"`
	// Clusters are the cluster directories whose root-cert.pem was
	// rewritten: with the transition bundle, or the new root alone.
	Clusters []string `json:"clusters,omitempty"`
	// RotationFinished says the previous root and the transition bundle
	// were removed.
	RotationFinished bool `json:"rotationFinished,omitempty"`
}

func (o *CertsRootOptions) request() pki.RootRequest {
	return pki.RootRequest{CommonName: o.CommonName, Org: o.Org, Validity: o.validity, Key: pki.KeySpec{Algorithm: o.KeyAlgorithm, Size: o.KeySize}}
}

// clusterDirs lists the subdirectories of dir that hold a cluster's files.
func clusterDirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read --dir %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), pki.CACertFile)); err == nil {
				out = append(out, e.Name())
			}
		}
	}
	return out, nil
}

func (o *CertsRootOptions) rotate(ctx context.Context) error {
	old, err := pki.LoadCA(filepath.Join(o.Dir, pki.RootCertFile), filepath.Join(o.Dir, pki.RootKeyFile), o.now())
	if err != nil {
		return fmt.Errorf("--rotate needs the current root in --dir: %w", err)
	}
	// The previous root may be the one clusters still issue from, and its
	// key may exist nowhere else: it is never overwritten, not even with
	// --force.
	for _, name := range []string{pki.PreviousRootCertFile, pki.PreviousRootKeyFile} {
		if _, err := os.Lstat(filepath.Join(o.Dir, name)); err == nil {
			return fmt.Errorf("%s already exists: a root rotation is in progress; finish it with `kubectl mesh certs root --finish-rotation --dir %s` (--force never overwrites the previous root); to start over, move previous-root-*.pem out of --dir first", filepath.Join(o.Dir, name), o.Dir)
		}
	}
	root, err := pki.NewRoot(o.request())
	if err != nil {
		return err
	}
	if err := stopped(ctx, nil, nil); err != nil {
		return err
	}
	transition := pki.Concat(old.CertPEM, root.CertPEM)
	clusters, err := clusterDirs(o.Dir)
	if err != nil {
		return err
	}
	// The previous root goes first, so that an interrupted run still has
	// the old key on disk.
	if err := pki.WriteFiles(o.Dir, []pki.File{
		{Name: pki.PreviousRootCertFile, Data: old.CertPEM},
		{Name: pki.PreviousRootKeyFile, Data: old.KeyPEM, Secret: true},
	}, false); err != nil {
		return err
	}
	if err := pki.WriteFiles(o.Dir, append(pki.RootFiles(root), pki.File{Name: pki.TransitionRootFile, Data: transition}), true); err != nil {
		return err
	}
	for _, c := range clusters {
		if err := pki.WriteFiles(filepath.Join(o.Dir, c), []pki.File{{Name: pki.RootCertFile, Data: transition}}, true); err != nil {
			return err
		}
	}
	prev := certInfo(old.Cert)
	res := RootResult{Dir: o.Dir, Root: certInfo(root.Cert), Previous: &prev, Clusters: clusters}
	return o.PrintFlags.PrintReport(o.Out, res, func(out io.Writer) error {
		_, err := fmt.Fprintf(out, "wrote new root CA %q to %s\n  old root %s (now %s)\n  new root %s\n  transition bundle %s, copied to the root-cert.pem of: %v\n%s\n",
			root.Cert.Subject.CommonName, o.Dir, pki.Fingerprint(old.Cert), pki.PreviousRootCertFile, pki.Fingerprint(root.Cert), pki.TransitionRootFile, clusters, rotationSteps)
		return err
	})
}

func (o *CertsRootOptions) finishRotation() error {
	root, err := pki.LoadCA(filepath.Join(o.Dir, pki.RootCertFile), filepath.Join(o.Dir, pki.RootKeyFile), o.now())
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(o.Dir, pki.TransitionRootFile)); err != nil {
		return fmt.Errorf("%s not found: no root rotation is in progress in --dir %s", filepath.Join(o.Dir, pki.TransitionRootFile), o.Dir)
	}
	clusters, err := clusterDirs(o.Dir)
	if err != nil {
		return err
	}
	// Dropping the old root while a cluster still issues from it would
	// break that cluster's mTLS, so every intermediate is checked first.
	for _, c := range clusters {
		b, err := pki.LoadBundle(filepath.Join(o.Dir, c))
		if err != nil {
			return err
		}
		inter, err := b.Intermediate()
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(o.Dir, c), err)
		}
		if inter.CheckSignatureFrom(root.Cert) != nil {
			return fmt.Errorf("cluster %s still issues from the previous root; run `kubectl mesh certs rotate %s` and install it first", c, c)
		}
	}
	for _, c := range clusters {
		if err := pki.WriteFiles(filepath.Join(o.Dir, c), []pki.File{{Name: pki.RootCertFile, Data: root.CertPEM}}, true); err != nil {
			return err
		}
	}
	for _, name := range []string{pki.TransitionRootFile, pki.PreviousRootCertFile, pki.PreviousRootKeyFile} {
		if err := os.Remove(filepath.Join(o.Dir, name)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	res := RootResult{Dir: o.Dir, Root: certInfo(root.Cert), Clusters: clusters, RotationFinished: true}
	return o.PrintFlags.PrintReport(o.Out, res, func(out io.Writer) error {
		_, err := fmt.Fprintf(out, "root rotation finished in %s: clusters %v trust only %s\nnext: kubectl mesh certs install --contexts … --force --restart\n", o.Dir, clusters, pki.Fingerprint(root.Cert))
		return err
	})
}
