package certs

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki/pkitest"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

func writeDir(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if err := pkitest.WriteDir(dir, files); err != nil {
		t.Fatal(err)
	}
}

func warningLines(out string) (n int) {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "warning: ") {
			n++
		}
	}
	return n
}

// A plug-in CA made like Istio's samples/certs (no path length constraint,
// cert-chain.pem without the root, the root's key kept offline) verifies
// with two warnings, installs, and verifies in the cluster; a later bundle
// that only adds a root installs without --force; one with the key
// swapped is refused naming ca-key.pem.
func TestBringYourOwnIstioBundle(t *testing.T) {
	secrets := theLab.Cluster("cluster1").Kube.CoreV1().Secrets(rules.IstioSystemNamespace)
	t.Cleanup(func() { _ = secrets.Delete(context.Background(), pki.SecretName, metav1.DeleteOptions{}) })
	root, inter, err := pkitest.IstioSample()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeDir(t, dir, map[string][]byte{pki.RootCertFile: root.CertPEM})
	writeDir(t, filepath.Join(dir, "cluster1"), pkitest.SampleFiles(inter, root.CertPEM))

	if out := mustMesh(t, "certs", "verify", "--dir", dir); warningLines(out) != 2 {
		t.Errorf("verify --dir of Istio's sample layout: want two warnings:\n%s", out)
	}
	mustMesh(t, "certs", "install", "--dir", dir, "--context", "cluster1", "--force")
	if out := mustMesh(t, "certs", "verify", "--contexts", "cluster1"); warningLines(out) != 2 {
		t.Errorf("verify --contexts cluster1 after installing it: want two warnings:\n%s", out)
	}

	newRoot, err := pkitest.IstioStyle("New Root CA", nil, 10*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wider := t.TempDir()
	writeDir(t, filepath.Join(wider, "cluster1"), pkitest.SampleFiles(inter, pki.Concat(root.CertPEM, newRoot.CertPEM)))
	out := mustMesh(t, "certs", "install", "--dir", wider, "--context", "cluster1")
	if !strings.Contains(out, "trusting more roots") || !strings.Contains(out, filepath.Join(wider, "backups")) {
		t.Errorf("install of a bundle that only adds a root:\n%s", out)
	}
	s, err := secrets.Get(t.Context(), pki.SecretName, metav1.GetOptions{})
	if err != nil || string(s.Data[pki.RootCertFile]) != string(pki.Concat(root.CertPEM, newRoot.CertPEM)) {
		t.Fatalf("root-cert.pem in cluster1 = %q (%v), want both roots", s.Data[pki.RootCertFile], err)
	}

	swapped := t.TempDir()
	other, err := pkitest.IstioStyle("Another CA", root, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	files := pkitest.SampleFiles(inter, root.CertPEM)
	files[pki.CAKeyFile] = other.KeyPEM
	writeDir(t, filepath.Join(swapped, "cluster1"), files)
	if _, stderr, err := mesh(t, "certs", "install", "--dir", swapped, "--context", "cluster1", "--force"); err == nil || !strings.Contains(stderr, pki.CAKeyFile) {
		t.Errorf("install with a swapped key: %v, want a refusal naming %s:\n%s", err, pki.CAKeyFile, stderr)
	}
}
