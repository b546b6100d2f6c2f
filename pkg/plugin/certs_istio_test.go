package plugin

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki/pkitest"
)

func lines(s, prefix string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// Issue 13, certificate checks: Istio's own sample plug-in CA runs istiod
// fine, so verify passes it with two warnings (no path length constraint,
// cert-chain.pem without the root), also with the root certificate but not
// its key in --dir; with the key swapped it fails naming ca-key.pem.
func TestVerifyIstioSamplePluginCA(t *testing.T) {
	root, inter := pkitest.MustIstioSample(t)
	dir := pkitest.SampleDir(t, root, inter)
	for _, withRoot := range []bool{false, true} {
		if withRoot {
			// tools/certs keeps the root beside the clusters; its key is
			// kept offline.
			pkitest.WriteFiles(t, dir, map[string][]byte{pki.RootCertFile: root.CertPEM})
		}
		out, err := runCerts(t, "verify", "--dir", dir)
		if err != nil {
			t.Fatalf("verify (root-cert.pem in --dir: %v) of Istio's sample layout: %v\n%s", withRoot, err, out)
		}
		warnings := lines(out, "warning: ")
		if len(warnings) != 2 || !strings.Contains(warnings[0]+warnings[1], "path length") || !strings.Contains(warnings[0]+warnings[1], pki.CertChainFile) {
			t.Errorf("root-cert.pem in --dir: %v: want exactly the warnings about the path length and cert-chain.pem without the root, got:\n%s", withRoot, out)
		}
	}

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkitest.WriteFiles(t, filepath.Join(dir, "cluster1"), map[string][]byte{pki.CAKeyFile: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)})})
	out, err := runCerts(t, "verify", "--dir", dir)
	if err == nil {
		t.Fatalf("verify with a swapped ca-key.pem passed:\n%s", out)
	}
	if errs := lines(out, "error: "); len(errs) != 1 || !strings.Contains(errs[0], pki.CAKeyFile) {
		t.Errorf("want one error naming %s, got:\n%s", pki.CAKeyFile, out)
	}
}

// intermediate and rotate ask for the root key only when they sign: with
// the root's key kept offline, a refusal that needs no signing says what
// it is about, and signing names the missing key and --root-key.
func TestIntermediateAsksForRootKeyOnlyToSign(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	mustCerts(t, "root", "--dir", dir, "--key-algorithm", "ecdsa")
	mustCerts(t, "intermediate", "cluster1", "--dir", dir)
	if err := os.Rename(filepath.Join(dir, pki.RootKeyFile), filepath.Join(t.TempDir(), "offline-root-key.pem")); err != nil {
		t.Fatal(err)
	}
	if _, err := runCerts(t, "intermediate", "cluster1", "--dir", dir); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("intermediate of an existing cluster without the root key: %v, want the refusal about the existing files", err)
	}
	if _, err := runCerts(t, "rotate", "cluster9", "--dir", dir); err == nil || !strings.Contains(err.Error(), "no intermediate to rotate") {
		t.Errorf("rotate of an unknown cluster without the root key: %v, want the refusal about the missing intermediate", err)
	}
	if _, err := runCerts(t, "intermediate", "cluster2", "--dir", dir); err == nil || !strings.Contains(err.Error(), pki.RootKeyFile) || !strings.Contains(err.Error(), "--root-key") {
		t.Errorf("intermediate that must sign without the root key: %v, want an error naming %s and --root-key", err, pki.RootKeyFile)
	}
	mustCerts(t, "verify", "--dir", dir)
}
