package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

func webhookConfigs() (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration) {
	return &admissionregistrationv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: Name},
			Webhooks:   []admissionregistrationv1.MutatingWebhook{{Name: "serviceentries.mesh.kubectl-mesh.io"}},
		}, &admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: Name},
			Webhooks:   []admissionregistrationv1.ValidatingWebhook{{Name: "serviceentries.mesh.kubectl-mesh.io"}},
		}
}

func TestSelfManagedTLS(t *testing.T) {
	ctx := context.Background()
	mwc, vwc := webhookConfigs()
	kube := fake.NewClientset(mwc, vwc)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	replica := func(dir string) *SelfManagedTLS {
		return &SelfManagedTLS{
			Kube: kube, Namespace: rules.MeshNamespace, SecretName: ServingSecretName, ServiceName: Name,
			CertDir: dir, Validity: 24 * time.Hour, WebhookConfigName: Name, Log: logr.Discard(),
			Now: func() time.Time { return now },
		}
	}
	a, b := replica(t.TempDir()), replica(t.TempDir())
	if err := a.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	// Both replicas serve the same pair, which chains to the caBundle of
	// both configurations and names the Service.
	certA, _ := os.ReadFile(filepath.Join(a.CertDir, "tls.crt"))
	certB, _ := os.ReadFile(filepath.Join(b.CertDir, "tls.crt"))
	if len(certA) == 0 || string(certA) != string(certB) {
		t.Fatal("replicas serve different certificates; they must share the Secret's")
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(a.CertDir, "tls.crt"), filepath.Join(a.CertDir, "tls.key")); err != nil {
		t.Fatalf("serving pair: %v", err)
	}
	m, _ := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, Name, metav1.GetOptions{})
	v, _ := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, Name, metav1.GetOptions{})
	verify := func(bundle []byte, certPEM []byte) {
		t.Helper()
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(bundle) {
			t.Fatal("caBundle holds no certificate")
		}
		c, err := parseCert(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: "mesh-webhook.mesh-system.svc", CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Fatalf("serving certificate does not verify against caBundle: %v", err)
		}
	}
	verify(m.Webhooks[0].ClientConfig.CABundle, certA)
	verify(v.Webhooks[0].ClientConfig.CABundle, certA)

	// Nothing changes before two thirds of the validity.
	now = now.Add(12 * time.Hour)
	if err := a.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(a.CertDir, "tls.crt")); string(again) != string(certA) {
		t.Fatal("certificate renewed before two thirds of its life")
	}
	// After that it is renewed, still under the same CA.
	now = now.Add(5 * time.Hour)
	if err := a.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	renewed, _ := os.ReadFile(filepath.Join(a.CertDir, "tls.crt"))
	if string(renewed) == string(certA) {
		t.Fatal("certificate not renewed after two thirds of its life")
	}
	verify(m.Webhooks[0].ClientConfig.CABundle, renewed)
	// The other replica picks the renewed pair up from the Secret.
	if err := b.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(b.CertDir, "tls.crt")); string(got) != string(renewed) {
		t.Fatal("second replica kept the old certificate")
	}
	// When the CA itself ages out, the new bundle keeps the previous CA so
	// that API servers with the old caBundle keep trusting the webhook.
	now = now.Add(24 * time.Hour * caValidityFactor * 2 / 3)
	if err := a.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	m, _ = kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, Name, metav1.GetOptions{})
	latest, _ := os.ReadFile(filepath.Join(a.CertDir, "tls.crt"))
	verify(m.Webhooks[0].ClientConfig.CABundle, latest)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(m.Webhooks[0].ClientConfig.CABundle)
	if n := len(pool.Subjects()); n != 2 { //nolint:staticcheck // counting the bundle's certificates, not checking trust
		t.Fatalf("caBundle holds %d CAs after a CA rotation, want the new and the previous", n)
	}
}

func TestSelfManagedTLSWithoutConfigurations(t *testing.T) {
	s := &SelfManagedTLS{
		Kube: fake.NewClientset(), Namespace: rules.MeshNamespace, SecretName: ServingSecretName, ServiceName: Name,
		CertDir: t.TempDir(), Validity: time.Hour, WebhookConfigName: Name, Log: logr.Discard(),
	}
	// Webhook configurations may be applied after the Deployment: the files
	// are written anyway and caBundle patched on a later check.
	if err := s.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.CertDir, "tls.key")); err != nil {
		t.Fatal(err)
	}
}

// TestSelfManagedTLSTrustBeforeUse: a serving certificate is published (in
// the shared Secret, which other replicas serve from, or in CertDir, which
// this one serves) only once the caBundle of both configurations trusts its
// CA. Otherwise, for the moment between a CA rotation and the caBundle
// patch, the API server rejects the webhook's certificate and every
// .global write fails.
func TestSelfManagedTLSTrustBeforeUse(t *testing.T) {
	ctx := context.Background()
	mwc, vwc := webhookConfigs()
	kube := fake.NewClientset(mwc, vwc)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &SelfManagedTLS{
		Kube: kube, Namespace: rules.MeshNamespace, SecretName: ServingSecretName, ServiceName: Name,
		CertDir: t.TempDir(), Validity: 24 * time.Hour, WebhookConfigName: Name, Log: logr.Discard(),
		Now: func() time.Time { return now },
	}
	mGVR := admissionregistrationv1.SchemeGroupVersion.WithResource("mutatingwebhookconfigurations")
	vGVR := admissionregistrationv1.SchemeGroupVersion.WithResource("validatingwebhookconfigurations")
	// bundles are the caBundles stored now, before the intercepted write.
	bundles := func() [][]byte {
		m, err := kube.Tracker().Get(mGVR, "", Name)
		if err != nil {
			t.Fatal(err)
		}
		v, err := kube.Tracker().Get(vGVR, "", Name)
		if err != nil {
			t.Fatal(err)
		}
		return [][]byte{m.(*admissionregistrationv1.MutatingWebhookConfiguration).Webhooks[0].ClientConfig.CABundle,
			v.(*admissionregistrationv1.ValidatingWebhookConfiguration).Webhooks[0].ClientConfig.CABundle}
	}
	var violations []string
	trusted := func(what string, certPEM []byte) {
		if len(certPEM) == 0 {
			return
		}
		c, err := parseCert(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bundles() {
			if len(b) == 0 {
				continue // nothing trusts anything yet: nothing can break
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(b)
			// Trust, not age: checked at the certificate's own start.
			at := c.NotBefore.Add(time.Minute)
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				violations = append(violations, fmt.Sprintf("%s (issued by %s, serial %s) while the stored caBundle does not trust it: %v", what, c.Issuer.CommonName, c.SerialNumber, err))
			}
		}
	}
	for _, res := range []string{"secrets"} {
		for _, verb := range []string{"create", "update", "patch"} {
			kube.PrependReactor(verb, res, func(a k8stesting.Action) (bool, runtime.Object, error) {
				if o, ok := a.(interface{ GetObject() runtime.Object }); ok {
					if sec, ok := o.GetObject().(*corev1.Secret); ok {
						trusted("Secret "+verb+" publishes a serving certificate", sec.Data[SecretCert])
					}
				}
				return false, nil, nil
			})
		}
	}
	// When the caBundle changes, what this replica serves must still be
	// trusted by the caBundle being replaced.
	for _, res := range []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"} {
		for _, verb := range []string{"update", "patch"} {
			kube.PrependReactor(verb, res, func(k8stesting.Action) (bool, runtime.Object, error) {
				served, _ := os.ReadFile(filepath.Join(s.CertDir, SecretCert))
				trusted("CertDir serves a certificate at the caBundle "+verb, served)
				return false, nil, nil
			})
		}
	}

	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(filepath.Join(s.CertDir, SecretCert))
	firstCert, err := parseCert(first)
	if err != nil {
		t.Fatal(err)
	}
	// Past two thirds of the CA's life: the CA and the serving certificate
	// are both replaced.
	now = now.Add(24 * time.Hour * caValidityFactor * 2 / 3)
	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	latest, _ := os.ReadFile(filepath.Join(s.CertDir, SecretCert))
	latestCert, err := parseCert(latest)
	if err != nil {
		t.Fatal(err)
	}
	if latestCert.Issuer.String() == firstCert.Issuer.String() && string(latestCert.AuthorityKeyId) == string(firstCert.AuthorityKeyId) {
		t.Fatal("the CA was not rotated; the test checks nothing")
	}
	for _, v := range violations {
		t.Error(v)
	}
	// And in the end both configurations trust what is served.
	violations = nil
	trusted("CertDir after the rotation", latest)
	for _, v := range violations {
		t.Error(v)
	}
}
