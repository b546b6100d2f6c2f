package certs

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
)

// Issuer is the root that signs intermediates: its certificate, read
// first; its key, read only to sign (it may be kept offline, and a refusal
// must not ask for it); and what the clusters are to trust.
type Issuer struct {
	CA      *pki.CA
	KeyPath string
	// Roots is every cluster's root-cert.pem: the root, or during a root
	// rotation the transition bundle.
	Roots []byte
}

// LoadIssuer reads the certificate of the root in dir, or of certPath
// (with its key at keyPath) when set.
func LoadIssuer(dir, certPath, keyPath string, now time.Time) (*Issuer, error) {
	fromDir := certPath == ""
	if fromDir {
		certPath, keyPath = filepath.Join(dir, pki.RootCertFile), filepath.Join(dir, pki.RootKeyFile)
	}
	ca, err := pki.LoadCACert(certPath, now)
	if err != nil {
		return nil, err
	}
	iss := &Issuer{CA: ca, KeyPath: keyPath, Roots: ca.CertPEM}
	// During a root rotation, clusters must trust the old and the new root
	// until every cluster issues from the new one.
	if fromDir {
		if t, err := os.ReadFile(filepath.Join(dir, pki.TransitionRootFile)); err == nil {
			iss.Roots = t
		}
	}
	return iss, nil
}

// KeyAlgorithm is the algorithm of the root's key: the default of its
// intermediates'.
func (i *Issuer) KeyAlgorithm() string {
	switch i.CA.Cert.PublicKeyAlgorithm {
	case x509.ECDSA:
		return pki.KeyECDSA
	case x509.RSA:
		return pki.KeyRSA
	}
	return ""
}

// IntermediateRequest is one `certs intermediate` or `certs rotate`, its
// flags parsed.
type IntermediateRequest struct {
	Dir      string
	Clusters []string
	Issuer   *Issuer
	// Rotate requires each cluster's intermediate to exist, and replaces
	// it; without it, existing files are refused unless Force.
	Rotate   bool
	Force    bool
	Org      string
	Validity time.Duration
	Key      pki.KeySpec
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Written, when set, is told of each cluster once its files are
	// written, before the next is made: a table shows each as it is
	// written, so that when a later one fails it still shows what was.
	Written func(IntermediateWritten) error
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

// Intermediates makes and writes the intermediates. Every refusal
// (existing files without Force, missing ones for Rotate) is checked
// before anything is written, and before the root's key is read; an
// interrupt stops it before the next cluster's files.
func Intermediates(ctx context.Context, req IntermediateRequest) (*IntermediateResult, error) {
	if err := refuse(req); err != nil {
		return nil, err
	}
	if err := req.Issuer.CA.LoadKey(req.Issuer.KeyPath); err != nil {
		return nil, err
	}
	res := &IntermediateResult{Dir: req.Dir}
	for i, c := range req.Clusters {
		w, err := writeIntermediate(ctx, req, i, c)
		if err != nil {
			return nil, err
		}
		res.Clusters = append(res.Clusters, w)
		if req.Written != nil {
			if err := req.Written(w); err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}

// refuse checks, before anything is written, that every cluster's files
// may be written: absent (or Force) for intermediate, present for rotate.
func refuse(req IntermediateRequest) error {
	for _, c := range req.Clusters {
		dir := filepath.Join(req.Dir, c)
		_, err := os.Stat(filepath.Join(dir, pki.CACertFile))
		switch {
		case req.Rotate && err != nil:
			return fmt.Errorf("%s not found: cluster %s has no intermediate to rotate; make one with `kubectl mesh certs intermediate %s`", filepath.Join(dir, pki.CACertFile), c, c)
		case !req.Rotate && !req.Force && err == nil:
			return fmt.Errorf("%s already exists; pass --force to replace it, or use `kubectl mesh certs rotate %s`", filepath.Join(dir, pki.CACertFile), c)
		}
	}
	return nil
}

// writeIntermediate makes the intermediate of the i-th cluster and writes
// its files.
func writeIntermediate(ctx context.Context, req IntermediateRequest, i int, c string) (IntermediateWritten, error) {
	if err := stopped(ctx, req.Clusters[:i], req.Clusters[i:]); err != nil {
		return IntermediateWritten{}, err
	}
	dir := filepath.Join(req.Dir, c)
	w := IntermediateWritten{Cluster: c, Dir: dir}
	if req.Rotate {
		if b, err := pki.LoadBundle(dir); err == nil {
			if inter, err := b.Intermediate(); err == nil {
				w.Replaces = pki.Fingerprint(inter)
			}
		}
	}
	root := req.Issuer.CA
	inter, err := pki.NewIntermediate(root, pki.IntermediateRequest{Cluster: c, Org: req.Org, Validity: req.Validity, Key: req.Key}, now(req.Now))
	if err != nil {
		return w, err
	}
	if err := stopped(ctx, req.Clusters[:i], req.Clusters[i:]); err != nil {
		return w, err
	}
	if err := pki.WriteFiles(dir, pki.BundleFiles(pki.NewBundle(inter, root.Cert, req.Issuer.Roots)), req.Force || req.Rotate); err != nil {
		return w, err
	}
	w.Intermediate = pki.InfoOf(inter.Cert)
	w.CappedAtRoot = inter.Cert.NotAfter.Equal(root.Cert.NotAfter)
	return w, nil
}
