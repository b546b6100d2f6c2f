// Package pkitest makes plug-in CAs the way other tools make them, for the
// tests of kubectl mesh certs: Istio's samples/certs and tools/certs make
// RSA CAs without a path length constraint, and samples/certs ships a
// cert-chain.pem holding the intermediate alone.
package pkitest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
)

// CA is a certificate with its RSA key, both also as PEM.
type CA struct {
	Cert            *x509.Certificate
	Key             *rsa.PrivateKey
	CertPEM, KeyPEM []byte
}

// Issue makes an RSA 2048 CA certificate signed by parent (self-signed
// when nil), valid from an hour ago for two years, CA:true without a path
// length constraint; change adjusts the template before it is signed (a
// signature algorithm, a path length, key usages, validity…).
func Issue(cn string, parent *CA, change func(*x509.Certificate)) (*CA, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(2 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if change != nil {
		change(tmpl)
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})}, nil
}

// IstioStyle makes a CA as Istio's samples do: Istio's subject, key usages
// for signing and TLS, no path length constraint, valid for validity; an
// intermediate gets Istio's SAN ca.istio.io.
func IstioStyle(cn string, parent *CA, validity time.Duration) (*CA, error) {
	return Issue(cn, parent, func(c *x509.Certificate) {
		c.Subject = pkix.Name{Country: []string{"US"}, Province: []string{"California"}, Locality: []string{"Sunnyvale"}, Organization: []string{"Istio"}, CommonName: cn}
		c.NotAfter = time.Now().Add(validity)
		c.KeyUsage |= x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		if parent != nil {
			c.DNSNames = []string{"ca.istio.io"}
		}
	})
}

// IstioSample is a root and an intermediate like Istio's samples/certs,
// the intermediate valid for two years.
func IstioSample() (root, inter *CA, err error) {
	if root, err = IstioStyle("Root CA", nil, 10*365*24*time.Hour); err != nil {
		return nil, nil, err
	}
	if inter, err = IstioStyle("Istio CA", root, 2*365*24*time.Hour); err != nil {
		return nil, nil, err
	}
	return root, inter, nil
}

// SampleFiles are the cacerts files of samples/certs for inter under
// roots (the PEM of root-cert.pem): cert-chain.pem is the intermediate
// alone.
func SampleFiles(inter *CA, roots []byte) map[string][]byte {
	return map[string][]byte{
		pki.CACertFile:    inter.CertPEM,
		pki.CAKeyFile:     inter.KeyPEM,
		pki.RootCertFile:  roots,
		pki.CertChainFile: inter.CertPEM,
	}
}

// WriteDir writes files (name → content) into dir, creating it.
func WriteDir(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Fingerprints are the fingerprints of the certificates in the PEM file at
// path, in order; the test fails when it cannot read them.
func Fingerprints(t testing.TB, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.ParseCertificates(data, path)
	if err != nil {
		t.Fatal(err)
	}
	fps := make([]string, 0, len(certs))
	for _, c := range certs {
		fps = append(fps, pki.Fingerprint(c))
	}
	return fps
}

// WriteFiles is WriteDir for a test, which fails when it cannot write.
func WriteFiles(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	if err := WriteDir(dir, files); err != nil {
		t.Fatal(err)
	}
}

// SampleDir lays out a plug-in CA like Istio's samples/certs as cluster1
// of a new certs --dir.
func SampleDir(t testing.TB, root, inter *CA) string {
	t.Helper()
	dir := t.TempDir()
	WriteFiles(t, filepath.Join(dir, "cluster1"), SampleFiles(inter, root.CertPEM))
	return dir
}

// MustIstioSample is IstioSample for a test, which fails without it.
func MustIstioSample(t testing.TB) (root, inter *CA) {
	t.Helper()
	root, inter, err := IstioSample()
	if err != nil {
		t.Fatal(err)
	}
	return root, inter
}
