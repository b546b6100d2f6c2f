package certs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
)

// RootRequest is one `certs root`, its flags parsed.
type RootRequest struct {
	Dir string
	// Root is the new root's subject, validity and key.
	Root pki.RootRequest
	// Force overwrites the files of an existing root; never those of the
	// previous root during a rotation.
	Force bool
	// Now is the clock (nil: time.Now).
	Now func() time.Time
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
	// CommonName is the CN of a new root, for the table (-o shows the
	// whole subject in Root).
	CommonName string `json:"-"`
}

func now(clock func() time.Time) time.Time {
	if clock == nil {
		return time.Now()
	}
	return clock()
}

// NewRoot makes a root and writes its files. An interrupt during the key
// generation stops it before anything is written.
func NewRoot(ctx context.Context, req RootRequest) (*RootResult, error) {
	root, err := pki.NewRoot(req.Root)
	if err != nil {
		return nil, err
	}
	if err := stopped(ctx, nil, nil); err != nil {
		return nil, err
	}
	if err := pki.WriteFiles(req.Dir, pki.RootFiles(root), req.Force); err != nil {
		return nil, err
	}
	return &RootResult{Dir: req.Dir, Root: pki.InfoOf(root.Cert), CommonName: root.Cert.Subject.CommonName}, nil
}

// RotateRoot replaces the root of req.Dir with a new one: the old one is
// kept as the previous root, and every cluster directory's root-cert.pem
// becomes the transition bundle, which trusts both.
func RotateRoot(ctx context.Context, req RootRequest) (*RootResult, error) {
	old, err := pki.LoadCA(filepath.Join(req.Dir, pki.RootCertFile), filepath.Join(req.Dir, pki.RootKeyFile), now(req.Now))
	if err != nil {
		return nil, fmt.Errorf("--rotate needs the current root in --dir: %w", err)
	}
	// The previous root may be the one clusters still issue from, and its
	// key may exist nowhere else: it is never overwritten, not even with
	// --force.
	for _, name := range []string{pki.PreviousRootCertFile, pki.PreviousRootKeyFile} {
		if _, err := os.Lstat(filepath.Join(req.Dir, name)); err == nil {
			return nil, fmt.Errorf("%s already exists: a root rotation is in progress; finish it with `kubectl mesh certs root --finish-rotation --dir %s` (--force never overwrites the previous root); to start over, move previous-root-*.pem out of --dir first", filepath.Join(req.Dir, name), req.Dir)
		}
	}
	root, err := pki.NewRoot(req.Root)
	if err != nil {
		return nil, err
	}
	if err := stopped(ctx, nil, nil); err != nil {
		return nil, err
	}
	clusters, err := clusterDirs(req.Dir)
	if err != nil {
		return nil, err
	}
	if err := writeRotation(req.Dir, old, root, clusters); err != nil {
		return nil, err
	}
	prev := pki.InfoOf(old.Cert)
	return &RootResult{Dir: req.Dir, Root: pki.InfoOf(root.Cert), Previous: &prev, Clusters: clusters, CommonName: root.Cert.Subject.CommonName}, nil
}

// writeRotation writes the previous root first, so that an interrupted
// run still has the old key on disk, then the new root and the transition
// bundle, and copies the bundle to every cluster directory.
func writeRotation(dir string, old, root *pki.CA, clusters []string) error {
	transition := pki.Concat(old.CertPEM, root.CertPEM)
	if err := pki.WriteFiles(dir, []pki.File{
		{Name: pki.PreviousRootCertFile, Data: old.CertPEM},
		{Name: pki.PreviousRootKeyFile, Data: old.KeyPEM, Secret: true},
	}, false); err != nil {
		return err
	}
	if err := pki.WriteFiles(dir, append(pki.RootFiles(root), pki.File{Name: pki.TransitionRootFile, Data: transition}), true); err != nil {
		return err
	}
	for _, c := range clusters {
		if err := pki.WriteFiles(filepath.Join(dir, c), []pki.File{{Name: pki.RootCertFile, Data: transition}}, true); err != nil {
			return err
		}
	}
	return nil
}

// FinishRotation ends a root rotation in dir: every cluster directory
// trusts only the new root, and the previous root and the transition
// bundle are removed. It refuses while a cluster still issues from the
// previous root.
func FinishRotation(dir string, clock func() time.Time) (*RootResult, error) {
	root, err := pki.LoadCA(filepath.Join(dir, pki.RootCertFile), filepath.Join(dir, pki.RootKeyFile), now(clock))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, pki.TransitionRootFile)); err != nil {
		return nil, fmt.Errorf("%s not found: no root rotation is in progress in --dir %s", filepath.Join(dir, pki.TransitionRootFile), dir)
	}
	clusters, err := clusterDirs(dir)
	if err != nil {
		return nil, err
	}
	// Dropping the old root while a cluster still issues from it would
	// break that cluster's mTLS, so every intermediate is checked first.
	for _, c := range clusters {
		b, err := pki.LoadBundle(filepath.Join(dir, c))
		if err != nil {
			return nil, err
		}
		inter, err := b.Intermediate()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, c), err)
		}
		if inter.CheckSignatureFrom(root.Cert) != nil {
			return nil, fmt.Errorf("cluster %s still issues from the previous root; run `kubectl mesh certs rotate %s` and install it first", c, c)
		}
	}
	for _, c := range clusters {
		if err := pki.WriteFiles(filepath.Join(dir, c), []pki.File{{Name: pki.RootCertFile, Data: root.CertPEM}}, true); err != nil {
			return nil, err
		}
	}
	for _, name := range []string{pki.TransitionRootFile, pki.PreviousRootCertFile, pki.PreviousRootKeyFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
	}
	return &RootResult{Dir: dir, Root: pki.InfoOf(root.Cert), Clusters: clusters, RotationFinished: true}, nil
}
