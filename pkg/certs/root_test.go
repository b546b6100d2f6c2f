package certs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki/pkitest"
)

// A root rotation, step by step: the transition bundle in every cluster,
// finishing refused while a cluster issues from the previous root, then
// only the new root.
func TestRootRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	mustRoot(t, dir)
	mustIntermediates(t, dir, false, "cluster1", "cluster2")
	old := pkitest.Fingerprints(t, filepath.Join(dir, pki.RootCertFile))[0]

	res, err := RotateRoot(t.Context(), rootRequest(dir))
	if err != nil {
		t.Fatal(err)
	}
	newRoot := pkitest.Fingerprints(t, filepath.Join(dir, pki.RootCertFile))[0]
	if newRoot == old || pkitest.Fingerprints(t, filepath.Join(dir, pki.PreviousRootCertFile))[0] != old {
		t.Fatal("RotateRoot did not keep the old root beside a new one")
	}
	if res.Root.Fingerprint != newRoot || res.Previous == nil || res.Previous.Fingerprint != old || !slices.Equal(res.Clusters, []string{"cluster1", "cluster2"}) || res.CommonName != "Test Root CA" {
		t.Errorf("RotateRoot = %+v, want new root %s, previous %s, both clusters", res, newRoot, old)
	}
	if st, err := os.Stat(filepath.Join(dir, pki.PreviousRootKeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("previous root key: %v, want mode 0600", err)
	}
	for _, c := range []string{"cluster1", "cluster2"} {
		if got := pkitest.Fingerprints(t, filepath.Join(dir, c, pki.RootCertFile)); !slices.Equal(got, []string{old, newRoot}) {
			t.Fatalf("%s root-cert.pem = %v, want the transition bundle [old new]", c, got)
		}
	}
	mustVerifyDir(t, dir) // step 1: old intermediates, both roots trusted

	if _, err := FinishRotation(dir, nil); err == nil || !strings.Contains(err.Error(), "still issues from the previous root") {
		t.Fatalf("FinishRotation with old intermediates: %v", err)
	}
	mustIntermediates(t, dir, true, "cluster1")
	mustVerifyDir(t, dir) // half way: cluster1 new, cluster2 old; both trust both
	mustIntermediates(t, dir, true, "cluster2")
	res, err = FinishRotation(dir, nil)
	if err != nil || !res.RotationFinished || res.Root.Fingerprint != newRoot {
		t.Fatalf("FinishRotation = %+v, %v", res, err)
	}
	for _, c := range []string{"cluster1", "cluster2"} {
		if got := pkitest.Fingerprints(t, filepath.Join(dir, c, pki.RootCertFile)); !slices.Equal(got, []string{newRoot}) {
			t.Fatalf("%s root-cert.pem after finishing = %v, want only the new root", c, got)
		}
	}
	for _, name := range []string{pki.TransitionRootFile, pki.PreviousRootCertFile, pki.PreviousRootKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Fatalf("%s left behind", name)
		}
	}
	mustVerifyDir(t, dir)
	if _, err := FinishRotation(dir, nil); err == nil || !strings.Contains(err.Error(), "no root rotation is in progress") {
		t.Errorf("FinishRotation without a rotation: %v", err)
	}
}

// Issue 13, item 7: rotating with Force during a rotation must not
// overwrite the previous root (clusters may still issue from it), and a
// Dir naming an existing directory keeps its mode: only directories the
// tool creates are made 0700.
func TestRootKeepsPreviousRootAndForeignDirectories(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	mustRoot(t, dir)
	if _, err := RotateRoot(t.Context(), rootRequest(dir)); err != nil {
		t.Fatal(err)
	}
	prevKey, err := os.ReadFile(filepath.Join(dir, pki.PreviousRootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	prevCert, err := os.ReadFile(filepath.Join(dir, pki.PreviousRootCertFile))
	if err != nil {
		t.Fatal(err)
	}
	force := rootRequest(dir)
	force.Force = true
	if res, err := RotateRoot(t.Context(), force); err == nil {
		t.Errorf("RotateRoot with Force during a rotation succeeded: %+v", res)
	}
	for name, want := range map[string][]byte{pki.PreviousRootKeyFile: prevKey, pki.PreviousRootCertFile: prevCert} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s was overwritten by RotateRoot with Force (%v)", name, err)
		}
	}

	shared := t.TempDir()
	if err := os.Chmod(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	mustRoot(t, shared)
	if st, err := os.Stat(shared); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("an existing Dir was chmodded: %v, want it left 0755", st.Mode().Perm())
	}
	created := filepath.Join(shared, "made", "here")
	mustRoot(t, created)
	for _, d := range []string{filepath.Dir(created), created} {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s, made by the tool: %v, want 0700", d, st.Mode().Perm())
		}
	}
	if st, err := os.Stat(filepath.Join(shared, pki.RootKeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("root key in an existing directory: %v, want 0600", err)
	}
}

func interrupted(t *testing.T) context.Context {
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(fmt.Errorf("%w by SIGINT (Ctrl-C)", cli.ErrInterrupted))
	return ctx
}

// An interrupt stops the file commands before the next files they write,
// and says which clusters got theirs.
func TestStopOnInterrupt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	mustRoot(t, dir)
	_, err := Intermediates(interrupted(t), intermediateRequest(t, dir, false, "cluster1", "cluster2"))
	if err == nil || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "not written for: cluster1, cluster2") {
		t.Fatalf("Intermediates after an interrupt: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cluster1")); !os.IsNotExist(err) {
		t.Errorf("files written after the interrupt: %v", err)
	}
	other := filepath.Join(t.TempDir(), "other")
	if _, err := NewRoot(interrupted(t), rootRequest(other)); err == nil || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("NewRoot after an interrupt: %v", err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("root written after the interrupt: %v", err)
	}
}

// Each cluster is reported as soon as its files are written; the refusals
// come before any is, and before the root's key is read.
func TestIntermediatesRefuseFirstAndReportEach(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	mustRoot(t, dir)
	mustIntermediates(t, dir, false, "cluster2")
	req := intermediateRequest(t, dir, false, "cluster1", "cluster2")
	req.Issuer.KeyPath = filepath.Join(dir, "absent-key.pem")
	if _, err := Intermediates(t.Context(), req); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("Intermediates over cluster2's files: %v, want the refusal, not the missing key", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cluster1")); !os.IsNotExist(err) {
		t.Errorf("cluster1 written before cluster2's refusal: %v", err)
	}

	req = intermediateRequest(t, dir, true, "cluster2")
	var seen []IntermediateWritten
	req.Written = func(w IntermediateWritten) error { seen = append(seen, w); return nil }
	before := pkitest.Fingerprints(t, filepath.Join(dir, "cluster2", pki.CACertFile))[0]
	res, err := Intermediates(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	after := pkitest.Fingerprints(t, filepath.Join(dir, "cluster2", pki.CACertFile))[0]
	if len(seen) != 1 || seen[0].Replaces != before || seen[0].Intermediate.Fingerprint != after || len(res.Clusters) != 1 || res.Clusters[0] != seen[0] {
		t.Errorf("rotate reported %+v, result %+v; want cluster2 replacing %s with %s", seen, res, before, after)
	}
	if got := req.Issuer.KeyAlgorithm(); got != pki.KeyECDSA {
		t.Errorf("KeyAlgorithm of an ECDSA root = %q", got)
	}
}
