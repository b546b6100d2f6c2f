package webhook

import (
	"crypto/x509"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

// TestSelfManagedTLS replaces cluster2's webhook by two replicas that make
// their own CA and serving certificate: the API server must trust them
// through the caBundle they patched.
func TestSelfManagedTLS(t *testing.T) {
	ctx := t.Context()
	if err := warn.Stop(); err != nil {
		t.Fatal(err)
	}
	c := theLab.Cluster("cluster2")
	w, err := c.InstallWebhook(ctx, lab.WebhookOptions{Replicas: 2, BinDir: binDir, SelfManagedTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	warn = w // stopped by TestMain
	sec, err := c.Kube.CoreV1().Secrets(lab.WebhookNamespace).Get(ctx, "mesh-webhook-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the shared CA Secret: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(w.CAPEM) {
		t.Fatal("caBundle holds no certificate")
	}
	for i := range w.Replicas {
		cert, err := w.ServedCert(i)
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		if string(cert.Raw) == "" || cert.Issuer.CommonName == "" {
			t.Fatalf("replica %d serves %v", i, cert.Subject)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
			t.Errorf("replica %d's certificate does not chain to the caBundle: %v", i, err)
		}
	}
	if len(sec.Data["ca.crt"]) == 0 {
		t.Error("Secret mesh-webhook-tls has no ca.crt")
	}
	// The API server calls the webhook over the self-managed TLS.
	if _, _, err := kubectl(t, ctx, "cluster2", minimal("self-managed", "selfmanaged.foo.global"), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	if spec := getSpec(t, ctx, "cluster2", "foo", "self-managed"); spec["location"] != "MESH_INTERNAL" || spec["addresses"] == nil {
		t.Fatalf("entry not defaulted through the self-managed webhook: %v", spec)
	}
}
