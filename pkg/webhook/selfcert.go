package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Keys of the self-managed TLS Secret.
const (
	SecretCACert     = "ca.crt"
	SecretCAKey      = "ca.key"
	SecretPrevCACert = "ca-previous.crt"
	SecretCert       = "tls.crt"
	SecretKey        = "tls.key"
)

// caValidityFactor: the CA lives this many serving-certificate lifetimes, so
// it is rotated rarely and each rotation keeps the previous CA trusted.
const caValidityFactor = 10

// SelfManagedTLS keeps a CA and a serving certificate for the webhook's
// Service in a Secret shared by all replicas (creating the Secret is the
// atomic choice of one CA), writes the serving pair to CertDir where the
// webhook server's certificate watcher reloads it, renews it after two
// thirds of its life and patches caBundle (current and previous CA) into
// both webhook configurations. Every replica runs it: it is idempotent.
type SelfManagedTLS struct {
	Kube              kubernetes.Interface
	Namespace         string
	SecretName        string
	ServiceName       string
	CertDir           string
	Validity          time.Duration
	WebhookConfigName string
	// ExtraSANs are further DNS names or IP addresses the serving
	// certificate is valid for, for webhook configurations that call a URL
	// instead of the Service.
	ExtraSANs []string
	// Interval between checks; default a tenth of Validity, at most an hour.
	Interval time.Duration
	Log      logr.Logger
	Now      func() time.Time
}

// NeedLeaderElection is false: every replica needs its files and may patch
// caBundle.
func (s *SelfManagedTLS) NeedLeaderElection() bool { return false }

// Start re-checks the certificates until ctx ends.
func (s *SelfManagedTLS) Start(ctx context.Context) error {
	every := s.Interval
	if every <= 0 {
		every = min(s.Validity/10, time.Hour)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.Ensure(ctx); err != nil {
				s.Log.Error(err, "self-managed TLS check failed; retrying at the next interval")
			}
		}
	}
}

func (s *SelfManagedTLS) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Ensure makes the Secret hold a valid CA and serving certificate, writes
// the serving pair to CertDir and patches caBundle.
func (s *SelfManagedTLS) Ensure(ctx context.Context) error {
	var sec *corev1.Secret
	for attempt := 0; ; attempt++ {
		var err error
		sec, err = s.reconcileSecret(ctx)
		if err == nil {
			break
		}
		if attempt < 3 && (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) {
			continue // another replica won the race: use its certificates
		}
		return fmt.Errorf("self-managed TLS: secret %s/%s: %w", s.Namespace, s.SecretName, err)
	}
	if err := s.writeFiles(sec); err != nil {
		return fmt.Errorf("self-managed TLS: write %s: %w", s.CertDir, err)
	}
	bundle := append(bytes.Clone(sec.Data[SecretCACert]), sec.Data[SecretPrevCACert]...)
	return s.patchCABundle(ctx, bundle)
}

func (s *SelfManagedTLS) reconcileSecret(ctx context.Context) (*corev1.Secret, error) {
	secrets := s.Kube.CoreV1().Secrets(s.Namespace)
	sec, err := secrets.Get(ctx, s.SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		sec = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: s.SecretName, Namespace: s.Namespace, Labels: map[string]string{"app.kubernetes.io/name": Name}},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{},
		}
		if err := s.renew(sec.Data); err != nil {
			return nil, err
		}
		s.Log.Info("created CA and serving certificate", "secret", s.SecretName)
		return secrets.Create(ctx, sec, metav1.CreateOptions{})
	}
	if err != nil {
		return nil, err
	}
	if sec.Data == nil {
		sec.Data = map[string][]byte{}
	}
	if !s.due(sec.Data) {
		return sec, nil
	}
	if err := s.renew(sec.Data); err != nil {
		return nil, err
	}
	s.Log.Info("rotated serving certificate", "secret", s.SecretName)
	return secrets.Update(ctx, sec, metav1.UpdateOptions{})
}

// due reports whether the serving certificate (or the CA) has lived two
// thirds of its life, is unreadable, or does not chain to the CA.
func (s *SelfManagedTLS) due(data map[string][]byte) bool {
	ca, errCA := parseCert(data[SecretCACert])
	cert, errCert := parseCert(data[SecretCert])
	if errCA != nil || errCert != nil || len(data[SecretKey]) == 0 || len(data[SecretCAKey]) == 0 {
		return true
	}
	if cert.CheckSignatureFrom(ca) != nil {
		return true
	}
	if dns, ips := s.sans(); !sameSANs(cert, dns, ips) {
		return true // the flags name other hosts than the certificate does
	}
	return pastTwoThirds(cert, s.now()) || pastTwoThirds(ca, s.now())
}

func sameSANs(c *x509.Certificate, dns []string, ips []net.IP) bool {
	if !slices.Equal(c.DNSNames, dns) || len(c.IPAddresses) != len(ips) {
		return false
	}
	for i := range ips {
		if !c.IPAddresses[i].Equal(ips[i]) {
			return false
		}
	}
	return true
}

func pastTwoThirds(c *x509.Certificate, now time.Time) bool {
	life := c.NotAfter.Sub(c.NotBefore)
	return now.After(c.NotBefore.Add(life * 2 / 3))
}

func parseCert(pemBytes []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// renew issues a new serving certificate, and a new CA first when the CA is
// missing or old; the previous CA stays in the bundle so that API servers
// holding the old caBundle keep trusting the webhook during the switch.
func (s *SelfManagedTLS) renew(data map[string][]byte) error {
	now := s.now()
	ca, errCA := parseCert(data[SecretCACert])
	caKey, errKey := parseKey(data[SecretCAKey])
	if errCA != nil || errKey != nil || pastTwoThirds(ca, now) {
		if errCA == nil {
			data[SecretPrevCACert] = data[SecretCACert]
		}
		var caPEM, keyPEM []byte
		var err error
		ca, caKey, caPEM, keyPEM, err = newCA(now, s.Validity*caValidityFactor)
		if err != nil {
			return err
		}
		data[SecretCACert], data[SecretCAKey] = caPEM, keyPEM
	}
	dns, ips := s.sans()
	certPEM, keyPEM, err := newServing(now, s.Validity, dns, ips, ca, caKey)
	if err != nil {
		return err
	}
	data[SecretCert], data[SecretKey] = certPEM, keyPEM
	return nil
}

// sans are the Service's names (the first is the certificate's subject)
// and ExtraSANs, split into DNS names and IP addresses.
func (s *SelfManagedTLS) sans() ([]string, []net.IP) {
	svc, ns := s.ServiceName, s.Namespace
	dns := []string{svc + "." + ns + ".svc", svc, svc + "." + ns, svc + "." + ns + ".svc.cluster.local"}
	var ips []net.IP
	for _, san := range s.ExtraSANs {
		if ip := net.ParseIP(san); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, san)
		}
	}
	return dns, ips
}

func parseKey(pemBytes []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("no PEM key")
	}
	return x509.ParseECPrivateKey(b.Bytes)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func encode(der []byte, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

func newCA(now time.Time, validity time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: Name + " CA", Organization: []string{"kubectl-mesh"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	c, k, err := encode(der, key)
	return cert, key, c, k, err
}

func newServing(now time.Time, validity time.Duration, dnsNames []string, ips []net.IP, ca *x509.Certificate, caKey *ecdsa.PrivateKey) ([]byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter // never outlive the issuer
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: dnsNames[0]},
		DNSNames:     dnsNames,
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	return encode(der, key)
}

// writeFiles replaces tls.crt and tls.key when they differ, each by an
// atomic rename so the watcher never reads half a file.
func (s *SelfManagedTLS) writeFiles(sec *corev1.Secret) error {
	if err := os.MkdirAll(s.CertDir, 0o700); err != nil {
		return err
	}
	// Key first: the watcher reloads on the certificate's change and must
	// then find the matching key.
	for _, name := range []string{SecretKey, SecretCert} {
		p := filepath.Join(s.CertDir, name)
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, sec.Data[name]) {
			continue
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, sec.Data[name], 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
	}
	return nil
}

func (s *SelfManagedTLS) patchCABundle(ctx context.Context, bundle []byte) error {
	adm := s.Kube.AdmissionregistrationV1()
	var errs []error
	mwc, err := adm.MutatingWebhookConfigurations().Get(ctx, s.WebhookConfigName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		s.Log.Info("MutatingWebhookConfiguration not found; caBundle not patched", "name", s.WebhookConfigName)
	case err != nil:
		errs = append(errs, err)
	default:
		changed := false
		for i := range mwc.Webhooks {
			if !bytes.Equal(mwc.Webhooks[i].ClientConfig.CABundle, bundle) {
				mwc.Webhooks[i].ClientConfig.CABundle, changed = bundle, true
			}
		}
		if changed {
			if _, err := adm.MutatingWebhookConfigurations().Update(ctx, mwc, metav1.UpdateOptions{}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	vwc, err := adm.ValidatingWebhookConfigurations().Get(ctx, s.WebhookConfigName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		s.Log.Info("ValidatingWebhookConfiguration not found; caBundle not patched", "name", s.WebhookConfigName)
	case err != nil:
		errs = append(errs, err)
	default:
		changed := false
		for i := range vwc.Webhooks {
			if !bytes.Equal(vwc.Webhooks[i].ClientConfig.CABundle, bundle) {
				vwc.Webhooks[i].ClientConfig.CABundle, changed = bundle, true
			}
		}
		if changed {
			if _, err := adm.ValidatingWebhookConfigurations().Update(ctx, vwc, metav1.UpdateOptions{}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("self-managed TLS: patch caBundle of %s: %w", s.WebhookConfigName, err)
	}
	return nil
}
