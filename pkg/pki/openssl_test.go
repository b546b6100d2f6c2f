package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireOpenSSL finds the openssl binary. Under CI (CI=true) its absence
// is a failure: `make test` installs it (hack/ensure-packages.sh), so a
// missing binary means the test setup is broken, not that the check may be
// skipped.
func requireOpenSSL(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("openssl is not on PATH under CI; run `make test-deps` (hack/ensure-packages.sh openssl)")
	}
	t.Skip("openssl is not on PATH; install it (hack/ensure-packages.sh openssl) to run the openssl checks")
	return ""
}

func openssl(t *testing.T, bin, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// workloadLeaf signs a certificate as istiod does for a workload: an
// end-entity with only a SPIFFE URI SAN, issued by the cluster's
// intermediate.
func workloadLeaf(t *testing.T, inter *CA, spiffe string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(spiffe)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(42),
		Subject:               pkix.Name{},
		URIs:                  []*url.URL{u},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, inter.Cert, &key.PublicKey, inter.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOpenSSLVerifies(t *testing.T) {
	bin := requireOpenSSL(t)
	const spiffe = "spiffe://cluster.local/ns/foo/sa/sleep"
	for _, spec := range []KeySpec{{Algorithm: KeyRSA, Size: 2048}, {Algorithm: KeyECDSA}} {
		t.Run(spec.Algorithm, func(t *testing.T) {
			root := roots(t)[spec.Algorithm]
			inter, err := NewIntermediate(root, IntermediateRequest{Cluster: "cluster1", Validity: DefaultIntermediateValidity, Key: spec}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := WriteFiles(dir, BundleFiles(NewBundle(inter, root.Cert, root.CertPEM)), false); err != nil {
				t.Fatal(err)
			}
			leaf := workloadLeaf(t, inter, spiffe)
			if err := os.WriteFile(filepath.Join(dir, "leaf.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), 0o600); err != nil {
				t.Fatal(err)
			}
			openssl(t, bin, dir, "verify", "-CAfile", RootCertFile, CACertFile)
			openssl(t, bin, dir, "verify", "-CAfile", CertChainFile, CACertFile)
			// A peer knows only root-cert.pem and receives the leaf with
			// the chain istiod appends to it.
			openssl(t, bin, dir, "verify", "-CAfile", RootCertFile, "-untrusted", CertChainFile, "leaf.pem")
			openssl(t, bin, dir, "verify", "-CAfile", CertChainFile, "-purpose", "sslserver", "leaf.pem")

			roots := x509.NewCertPool()
			roots.AddCert(root.Cert)
			inters := x509.NewCertPool()
			inters.AddCert(inter.Cert)
			chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			if err != nil || len(chains) != 1 || len(chains[0]) != 3 {
				t.Fatalf("Go x509 does not verify the workload leaf through the chain: %v %v", err, chains)
			}
			if leaf.URIs[0].String() != spiffe {
				t.Fatalf("leaf SAN %v", leaf.URIs)
			}
		})
	}
}
