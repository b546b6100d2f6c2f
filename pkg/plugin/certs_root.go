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

// Run writes the root, or rotates it (see certs.NewRoot, certs.RotateRoot
// and certs.FinishRotation), and says what it wrote.
func (o *CertsRootOptions) Run(ctx context.Context) error {
	req := certs.RootRequest{
		Dir:   o.Dir,
		Root:  pki.RootRequest{CommonName: o.CommonName, Org: o.Org, Validity: o.validity, Key: pki.KeySpec{Algorithm: o.KeyAlgorithm, Size: o.KeySize}},
		Force: o.Force,
		Now:   o.now,
	}
	var res *certs.RootResult
	var err error
	switch {
	case o.Rotate:
		res, err = certs.RotateRoot(ctx, req)
	case o.FinishRotation:
		res, err = certs.FinishRotation(o.Dir, o.now)
	default:
		res, err = certs.NewRoot(ctx, req)
	}
	if err != nil {
		return err
	}
	return o.PrintFlags.PrintReport(o.Out, res, func(out io.Writer) error { return rootTable(out, res) })
}

// rootTable says what certs root wrote, and what to do next.
func rootTable(out io.Writer, res *certs.RootResult) error {
	var err error
	switch {
	case res.RotationFinished:
		_, err = fmt.Fprintf(out, "root rotation finished in %s: clusters %v trust only %s\nnext: kubectl mesh certs install --contexts … --force --restart\n", res.Dir, res.Clusters, res.Root.Fingerprint)
	case res.Previous != nil:
		_, err = fmt.Fprintf(out, "wrote new root CA %q to %s\n  old root %s (now %s)\n  new root %s\n  transition bundle %s, copied to the root-cert.pem of: %v\n%s\n",
			res.CommonName, res.Dir, res.Previous.Fingerprint, pki.PreviousRootCertFile, res.Root.Fingerprint, pki.TransitionRootFile, res.Clusters, rotationSteps)
	default:
		_, err = fmt.Fprintf(out, "wrote root CA %q to %s (%s, %s)\n  fingerprint %s\n  valid until %s\nnext: kubectl mesh certs intermediate CLUSTER… --dir %s\n",
			res.CommonName, res.Dir, pki.RootCertFile, pki.RootKeyFile, res.Root.Fingerprint, res.Root.NotAfter.Format(time.RFC3339), res.Dir)
	}
	return err
}
