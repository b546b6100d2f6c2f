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
	"k8s.io/client-go/util/retry"
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
// the serving pair to CertDir and patches caBundle. A new CA is trusted
// before it is used: a rotation first stores the new CA beside the old one
// (keeping the serving pair, which the old CA still vouches for), patches
// caBundle to both, and only then issues the serving certificate from the
// new CA, publishes it in the Secret and serves it. An API server that still
// holds the old caBundle therefore never meets a certificate it cannot
// verify; if the patch fails, nothing new is served.
func (s *SelfManagedTLS) Ensure(ctx context.Context) error {
	sec, err := s.retry(ctx, s.reconcileCA)
	if err != nil {
		return err
	}
	bundle := append(bytes.Clone(sec.Data[SecretCACert]), sec.Data[SecretPrevCACert]...)
	if err := s.patchCABundle(ctx, bundle); err != nil {
		return err
	}
	if sec, err = s.retry(ctx, s.reconcileServing); err != nil {
		return err
	}
	if err := s.writeFiles(sec); err != nil {
		return fmt.Errorf("self-managed TLS: write %s: %w", s.CertDir, err)
	}
	return nil
}

// retry runs step until it does not lose a race with another replica
// (client-go's retry, on a Conflict or AlreadyExists): the winner's
// certificates are then used.
func (s *SelfManagedTLS) retry(ctx context.Context, step func(context.Context) (*corev1.Secret, error)) (*corev1.Secret, error) {
	var sec *corev1.Secret
	err := retry.OnError(retry.DefaultRetry, func(err error) bool {
		return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
	}, func() (err error) {
		sec, err = step(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("self-managed TLS: secret %s/%s: %w", s.Namespace, s.SecretName, err)
	}
	return sec, nil
}

// reconcileCA creates the Secret (CA and serving pair: nothing trusts or
// serves anything yet) or rotates its CA when due, keeping the previous CA
// and the serving pair.
func (s *SelfManagedTLS) reconcileCA(ctx context.Context) (*corev1.Secret, error) {
	secrets := s.Kube.CoreV1().Secrets(s.Namespace)
	sec, err := secrets.Get(ctx, s.SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		sec = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: s.SecretName, Namespace: s.Namespace, Labels: map[string]string{"app.kubernetes.io/name": Name}},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{},
		}
		if err := s.rotateCA(sec.Data); err != nil {
			return nil, err
		}
		if err := s.issueServing(sec.Data); err != nil {
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
	if !s.caDue(sec.Data) {
		return sec, nil
	}
	if err := s.rotateCA(sec.Data); err != nil {
		return nil, err
	}
	s.Log.Info("rotated CA; the serving certificate follows once caBundle trusts it", "secret", s.SecretName)
	return secrets.Update(ctx, sec, metav1.UpdateOptions{})
}

// reconcileServing renews the serving pair when due, under the Secret's CA
// (which caBundle trusts by now).
func (s *SelfManagedTLS) reconcileServing(ctx context.Context) (*corev1.Secret, error) {
	secrets := s.Kube.CoreV1().Secrets(s.Namespace)
	sec, err := secrets.Get(ctx, s.SecretName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if sec.Data == nil {
		sec.Data = map[string][]byte{}
	}
	if s.caDue(sec.Data) {
		// Another replica's Secret without a usable CA: leave it to the
		// next check, which rotates and trusts it first.
		return nil, errors.New("the CA changed under this check; retrying at the next interval")
	}
	if !s.servingDue(sec.Data) {
		return sec, nil
	}
	if err := s.issueServing(sec.Data); err != nil {
		return nil, err
	}
	s.Log.Info("rotated serving certificate", "secret", s.SecretName)
	return secrets.Update(ctx, sec, metav1.UpdateOptions{})
}

// caDue reports whether the CA is missing, unreadable or has lived two
// thirds of its life.
func (s *SelfManagedTLS) caDue(data map[string][]byte) bool {
	ca, errCA := parseCert(data[SecretCACert])
	_, errKey := parseKey(data[SecretCAKey])
	return errCA != nil || errKey != nil || pastTwoThirds(ca, s.now())
}

// servingDue reports whether the serving certificate has lived two thirds
// of its life, is unreadable, does not chain to the CA or names other hosts
// than the flags do.
func (s *SelfManagedTLS) servingDue(data map[string][]byte) bool {
	ca, errCA := parseCert(data[SecretCACert])
	cert, errCert := parseCert(data[SecretCert])
	if errCA != nil || errCert != nil || len(data[SecretKey]) == 0 {
		return true
	}
	if cert.CheckSignatureFrom(ca) != nil {
		return true
	}
	if dns, ips := s.sans(); !sameSANs(cert, dns, ips) {
		return true
	}
	return pastTwoThirds(cert, s.now())
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

// rotateCA makes a new CA; the current one, if readable, becomes the
// previous CA, which stays in caBundle so that certificates it issued keep
// being trusted during the switch.
func (s *SelfManagedTLS) rotateCA(data map[string][]byte) error {
	if _, err := parseCert(data[SecretCACert]); err == nil {
		data[SecretPrevCACert] = data[SecretCACert]
	}
	_, _, caPEM, keyPEM, err := newCA(s.now(), s.Validity*caValidityFactor)
	if err != nil {
		return err
	}
	data[SecretCACert], data[SecretCAKey] = caPEM, keyPEM
	return nil
}

// issueServing issues a new serving certificate from the Secret's CA.
func (s *SelfManagedTLS) issueServing(data map[string][]byte) error {
	ca, err := parseCert(data[SecretCACert])
	if err != nil {
		return fmt.Errorf("CA certificate: %w", err)
	}
	caKey, err := parseKey(data[SecretCAKey])
	if err != nil {
		return fmt.Errorf("CA key: %w", err)
	}
	dns, ips := s.sans()
	certPEM, keyPEM, err := newServing(s.now(), s.Validity, dns, ips, ca, caKey)
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

// patchCABundle sets caBundle on every webhook of both configurations with
// a JSON patch that tests each webhook's name at its index first (a
// concurrent reordering fails instead of patching the wrong webhook), so
// that it never overwrites what others change meanwhile (matchConditions).
func (s *SelfManagedTLS) patchCABundle(ctx context.Context, bundle []byte) error {
	err := patchWebhooks(ctx, s.Kube, s.WebhookConfigName, func(w webhookView) (string, any, bool) {
		// []byte marshals as base64, as caBundle is stored.
		return "clientConfig/caBundle", bundle, !bytes.Equal(w.caBundle, bundle)
	}, func(kind string) {
		s.Log.Info(kind+" not found; caBundle not patched", "name", s.WebhookConfigName)
	})
	if err != nil {
		return fmt.Errorf("self-managed TLS: patch caBundle of %s: %w", s.WebhookConfigName, err)
	}
	return nil
}
