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
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli/clitest"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki/pkitest"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

func istioSample(t *testing.T) (root, inter *pkitest.CA) {
	t.Helper()
	root, inter, err := pkitest.IstioSample()
	if err != nil {
		t.Fatal(err)
	}
	return root, inter
}

func istioStyle(t *testing.T, cn string, parent *pkitest.CA) *pkitest.CA {
	t.Helper()
	ca, err := pkitest.IstioStyle(cn, parent, 2*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// istioSampleDir lays out a plug-in CA like Istio's samples/certs as one
// cluster of a --dir.
func istioSampleDir(t *testing.T, root, inter *pkitest.CA) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, filepath.Join(dir, "cluster1"), pkitest.SampleFiles(inter, root.CertPEM))
	return dir
}

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if err := pkitest.WriteDir(dir, files); err != nil {
		t.Fatal(err)
	}
}

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
	root, inter := istioSample(t)
	dir := istioSampleDir(t, root, inter)
	for _, withRoot := range []bool{false, true} {
		if withRoot {
			// tools/certs keeps the root beside the clusters; its key is
			// kept offline.
			writeFiles(t, dir, map[string][]byte{pki.RootCertFile: root.CertPEM})
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
	writeFiles(t, filepath.Join(dir, "cluster1"), map[string][]byte{pki.CAKeyFile: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)})})
	out, err := runCerts(t, "verify", "--dir", dir)
	if err == nil {
		t.Fatalf("verify with a swapped ca-key.pem passed:\n%s", out)
	}
	if errs := lines(out, "error: "); len(errs) != 1 || !strings.Contains(errs[0], pki.CAKeyFile) {
		t.Errorf("want one error naming %s, got:\n%s", pki.CAKeyFile, out)
	}
}

// A bring-your-own bundle laid out as Istio's tools/certs makes it
// installs; a later bundle that only adds trust (the same intermediate,
// root-cert.pem with the installed root and a new one: step 1 of a root
// rotation) needs no --force; one with another intermediate still does.
func TestInstallBringYourOwnBundleAndAddedTrust(t *testing.T) {
	root, inter := istioSample(t)
	dir := istioSampleDir(t, root, inter)
	kube := clitest.NewCluster("ctx", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rules.IstioSystemNamespace}})
	clusters := clitest.Clusters{kube}
	if out, err := installInto(t, clusters, dir, false, "cluster1=ctx"); err != nil {
		t.Fatalf("install of a tools/certs bundle: %v\n%s", err, out)
	}

	newRoot := istioStyle(t, "New Root CA", nil)
	wider := t.TempDir()
	writeFiles(t, filepath.Join(wider, "cluster1"), pkitest.SampleFiles(inter, pki.Concat(root.CertPEM, newRoot.CertPEM)))
	out, err := installInto(t, clusters, wider, false, "cluster1=ctx")
	if err != nil {
		t.Fatalf("install of a bundle that only adds a root, without --force: %v\n%s", err, out)
	}
	s, err := kube.Kube.CoreV1().Secrets(rules.IstioSystemNamespace).Get(t.Context(), pki.SecretName, metav1.GetOptions{})
	if err != nil || string(s.Data[pki.RootCertFile]) != string(pki.Concat(root.CertPEM, newRoot.CertPEM)) {
		t.Fatalf("root-cert.pem after the trust-adding install = %q (%v)", s.Data[pki.RootCertFile], err)
	}
	if backups, _ := filepath.Glob(filepath.Join(wider, "backups", "cluster1-cacerts-*.yaml")); len(backups) != 1 {
		t.Errorf("the replaced cacerts was not backed up: %v", backups)
	}

	otherInter := istioStyle(t, "Other Istio CA", root)
	other := istioSampleDir(t, root, otherInter)
	if out, err := installInto(t, clusters, other, false, "cluster1=ctx"); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("install of another intermediate without --force: %v\n%s", err, out)
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
