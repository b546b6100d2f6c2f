// Package link checks `kubectl mesh link`, `unlink` and `status` end to end:
// the real kubectl runs the plugin against a three-cluster lab of real API
// servers (cluster1 CoreDNS, cluster2 kube-dns, cluster3 CoreDNS and a
// gateway without load balancer), and three clusters with the furniture of
// a current Istio multi-network install (east, west, north) for
// --multi-primary.
package link

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

var theLab *lab.Lab

func TestMain(m *testing.M) {
	opts := lab.Options{Clusters: append(slices.Clone(lab.DefaultClusters), currentIstio...), CurrentIstio: currentIstio}
	os.Exit(lab.RunTests(m, opts, func(_ context.Context, l *lab.Lab, _ string) (func(), error) {
		theLab = l
		return nil, nil
	}))
}

// kubectlMesh runs `kubectl mesh args…` and fails the test on error.
func kubectlMesh(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := theLab.Kubectl(t.Context(), nil, append([]string{"mesh"}, args...)...)
	if err != nil {
		t.Fatalf("kubectl mesh %v: %v\nstdout:\n%s", args, err, out)
	}
	if stderr != "" {
		t.Logf("kubectl mesh %v stderr:\n%s", args, stderr)
	}
	return out
}

// meshFails runs `kubectl mesh args…`, which must exit with code 1.
func meshFails(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	out, stderr, err := theLab.Kubectl(t.Context(), nil, append([]string{"mesh"}, args...)...)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("kubectl mesh %v: want exit code 1, got %v\nstdout:\n%s\nstderr:\n%s", args, err, out, stderr)
	}
	return out, stderr
}

// ca is a certificate and its key.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, cn string, parent *ca) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"kubectl-mesh e2e"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		tmpl.MaxPathLenZero = true
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &ca{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// installCacerts writes istio-system/cacerts of cluster, with an
// intermediate signed by root.
func installCacerts(t *testing.T, cluster string, root *ca) {
	t.Helper()
	inter := newCA(t, "istio-ca "+cluster, root)
	keyDER, err := x509.MarshalECPrivateKey(inter.key)
	if err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "cacerts", Namespace: "istio-system"},
		Data: map[string][]byte{
			"ca-cert.pem":    inter.pem,
			"ca-key.pem":     pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
			"root-cert.pem":  root.pem,
			"cert-chain.pem": append(append([]byte{}, inter.pem...), root.pem...),
		},
	}
	secrets := theLab.Cluster(cluster).Kube.CoreV1().Secrets("istio-system")
	ctx := context.Background() // also used from t.Cleanup, after t.Context ends
	if err := secrets.Delete(ctx, "cacerts", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
