package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// selfSigned makes a throw-away certificate without cfssl, so that the
// Secret helpers are tested independently of the issuing code.
func selfSigned(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestBundleFromSecret(t *testing.T) {
	root := selfSigned(t, "root")
	full := map[string][]byte{CACertFile: root, CAKeyFile: []byte("k"), RootCertFile: root, CertChainFile: root}
	tests := map[string]struct {
		drop    string
		wantErr string
	}{
		"complete":           {},
		"missing ca-cert":    {drop: CACertFile, wantErr: `"ca-cert.pem"`},
		"missing ca-key":     {drop: CAKeyFile, wantErr: `"ca-key.pem"`},
		"missing root-cert":  {drop: RootCertFile, wantErr: `"root-cert.pem"`},
		"missing cert-chain": {drop: CertChainFile, wantErr: `"cert-chain.pem"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			data := map[string][]byte{}
			for k, v := range full {
				if k != tc.drop {
					data[k] = v
				}
			}
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: SecretName, Namespace: rules.IstioSystemNamespace}, Data: data}
			b, err := BundleFromSecret(s)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("dropping %q: error %v, want one naming %s", tc.drop, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			roots, err := b.Roots()
			if err != nil || len(roots) != 1 || roots[0].Subject.CommonName != "root" {
				t.Fatalf("Roots() = %v, %v", roots, err)
			}
		})
	}
}

func TestRootsTransitionBundle(t *testing.T) {
	b := &Bundle{RootCert: append(selfSigned(t, "old"), selfSigned(t, "new")...)}
	roots, err := b.Roots()
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 2 || roots[0].Subject.CommonName != "old" || roots[1].Subject.CommonName != "new" {
		t.Fatalf("Roots() of a transition bundle = %v", roots)
	}
}

func TestFingerprintFormat(t *testing.T) {
	certs, err := ParseCertificates(selfSigned(t, "x"), "x.pem")
	if err != nil {
		t.Fatal(err)
	}
	fp := Fingerprint(certs[0])
	parts := strings.Split(fp, ":")
	if len(parts) != 32 {
		t.Fatalf("fingerprint %q has %d bytes, want 32", fp, len(parts))
	}
	for _, p := range parts {
		if len(p) != 2 || strings.ToUpper(p) != p {
			t.Fatalf("fingerprint %q: byte %q is not two upper-case hex digits", fp, p)
		}
	}
}

func TestParseCertificatesErrors(t *testing.T) {
	tests := map[string]struct {
		data    []byte
		wantErr string
	}{
		"not pem": {[]byte("hello"), "no PEM certificate found"},
		"a key":   {pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}), `"EC PRIVATE KEY" PEM block`},
		"garbage": {pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}), "not a valid X.509 certificate"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseCertificates(tc.data, "in.pem")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "in.pem: ") {
				t.Fatalf("error %v, want one starting with the file name and containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestReadClusterBundleNotFound(t *testing.T) {
	_, err := ReadClusterBundle(t.Context(), fake.NewClientset())
	if err == nil || !strings.Contains(err.Error(), "kubectl mesh certs install") || !apierrors.IsNotFound(err) {
		t.Fatalf("error %v: want a NotFound that says to run kubectl mesh certs install", err)
	}
}
