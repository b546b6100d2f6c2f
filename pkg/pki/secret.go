package pki

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// SecretName is the Secret in rules.IstioSystemNamespace from which istiod
// loads a plug-in CA instead of making its own self-signed root.
const SecretName = "cacerts"

// Keys of the cacerts Secret, named as istiod expects them.
const (
	CACertFile    = "ca-cert.pem"
	CAKeyFile     = "ca-key.pem"
	RootCertFile  = "root-cert.pem"
	CertChainFile = "cert-chain.pem"
)

// Bundle is the four files of Istio's plug-in CA secret.
type Bundle struct{ CACert, CAKey, RootCert, CertChain []byte }

// BundleFromSecret reads the four keys of a cacerts Secret. A missing or
// empty key is an error naming it, since istiod would fall back to a
// self-signed root without saying why.
func BundleFromSecret(s *corev1.Secret) (*Bundle, error) {
	if s == nil {
		return nil, fmt.Errorf("no secret given")
	}
	get := func(key string) ([]byte, error) {
		v := s.Data[key]
		if len(v) == 0 {
			if sv := s.StringData[key]; sv != "" {
				return []byte(sv), nil
			}
			return nil, fmt.Errorf("secret %s/%s has no %q key; re-create it with `kubectl mesh certs install`", s.Namespace, s.Name, key)
		}
		return v, nil
	}
	var b Bundle
	var err error
	if b.CACert, err = get(CACertFile); err != nil {
		return nil, err
	}
	if b.CAKey, err = get(CAKeyFile); err != nil {
		return nil, err
	}
	if b.RootCert, err = get(RootCertFile); err != nil {
		return nil, err
	}
	if b.CertChain, err = get(CertChainFile); err != nil {
		return nil, err
	}
	return &b, nil
}

// Roots returns every certificate of root-cert.pem: during a root rotation
// it holds the old and the new root (a transition bundle).
func (b *Bundle) Roots() ([]*x509.Certificate, error) {
	return ParseCertificates(b.RootCert, RootCertFile)
}

// Intermediate returns the CA certificate istiod signs with (ca-cert.pem).
func (b *Bundle) Intermediate() (*x509.Certificate, error) {
	certs, err := ParseCertificates(b.CACert, CACertFile)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("%s holds %d certificates; it must hold exactly the intermediate CA certificate", CACertFile, len(certs))
	}
	return certs[0], nil
}

// Chain returns the certificates of cert-chain.pem in file order.
func (b *Bundle) Chain() ([]*x509.Certificate, error) {
	return ParseCertificates(b.CertChain, CertChainFile)
}

// Fingerprint is the SHA-256 of the certificate's DER, as upper-case hex
// pairs joined by colons (the form `openssl x509 -fingerprint -sha256`
// prints), so users can compare it with their own tools.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	var sb strings.Builder
	for i, v := range sum {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02X", v)
	}
	return sb.String()
}

// ParseCertificates decodes every CERTIFICATE block of a PEM file; name is
// the file (or Secret key) the errors mention.
func ParseCertificates(data []byte, name string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: holds a %q PEM block where a CERTIFICATE was expected; pass the certificate file, not the key", name, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: not a valid X.509 certificate (%w); regenerate it with `kubectl mesh certs`", name, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate found; pass a PEM-encoded certificate (-----BEGIN CERTIFICATE-----)", name)
	}
	return certs, nil
}

// ReadClusterBundle reads the cacerts Secret of a cluster.
func ReadClusterBundle(ctx context.Context, kube kubernetes.Interface) (*Bundle, error) {
	s, err := kube.CoreV1().Secrets(rules.IstioSystemNamespace).Get(ctx, SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// Wrapped so callers can still test apierrors.IsNotFound.
		return nil, fmt.Errorf("secret %s/%s not found, so istiod uses its own self-signed root; run `kubectl mesh certs install`: %w", rules.IstioSystemNamespace, SecretName, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read secret %s/%s: %w", rules.IstioSystemNamespace, SecretName, err)
	}
	return BundleFromSecret(s)
}

// NewSecret builds the cacerts Secret of a bundle, labelled as written by
// kubectl-mesh.
func NewSecret(b *Bundle) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      SecretName,
			Namespace: rules.IstioSystemNamespace,
			Labels:    map[string]string{rules.ManagedByLabel: rules.ManagedByValue},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			CACertFile:    b.CACert,
			CAKeyFile:     b.CAKey,
			RootCertFile:  b.RootCert,
			CertChainFile: b.CertChain,
		},
	}
}

// Equal is true when both bundles hold the same bytes.
func (b *Bundle) Equal(o *Bundle) bool {
	return string(b.CACert) == string(o.CACert) && string(b.CAKey) == string(o.CAKey) &&
		string(b.RootCert) == string(o.RootCert) && string(b.CertChain) == string(o.CertChain)
}

// Identity summarises which CA a bundle is: its root fingerprints and its
// intermediate's fingerprint. Two bundles with the same identity are the
// same CA even if their PEM bytes differ (e.g. in whitespace).
type Identity struct {
	Roots        []string
	Intermediate string
}

// Identity reads the fingerprints of the bundle.
func (b *Bundle) Identity() (Identity, error) {
	roots, err := b.Roots()
	if err != nil {
		return Identity{}, err
	}
	inter, err := b.Intermediate()
	if err != nil {
		return Identity{}, err
	}
	id := Identity{Intermediate: Fingerprint(inter)}
	for _, r := range roots {
		id.Roots = append(id.Roots, Fingerprint(r))
	}
	return id, nil
}

// Same is true when both identities name the same roots (in the same order)
// and the same intermediate.
func (id Identity) Same(o Identity) bool {
	return id.Intermediate == o.Intermediate && strings.Join(id.Roots, ",") == strings.Join(o.Roots, ",")
}

// OnlyAddsTrust is true when id is installed over the CA installed: the same
// intermediate, and every root installed stays trusted next to new ones (the
// first step of a root rotation). Nothing of the installed CA is lost.
func (id Identity) OnlyAddsTrust(installed Identity) bool {
	if id.Intermediate != installed.Intermediate || len(id.Roots) <= len(installed.Roots) {
		return false
	}
	for _, r := range installed.Roots {
		if !slices.Contains(id.Roots, r) {
			return false
		}
	}
	return true
}

// String shows the identity for messages: root fingerprint(s) and the
// intermediate's.
func (id Identity) String() string {
	return fmt.Sprintf("root %s, intermediate %s", strings.Join(id.Roots, " + "), id.Intermediate)
}
