package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"time"

	cfconfig "github.com/cloudflare/cfssl/config"
	"github.com/cloudflare/cfssl/csr"
	cflog "github.com/cloudflare/cfssl/log"
	"github.com/cloudflare/cfssl/signer"
	"github.com/cloudflare/cfssl/signer/local"
)

// Defaults follow Istio's own certificate tooling (tools/certs): RSA 4096,
// a ten-year root and two-year intermediates.
const (
	DefaultRootValidity         = 10 * 365 * 24 * time.Hour
	DefaultIntermediateValidity = 2 * 365 * 24 * time.Hour
	DefaultOrg                  = "kubectl-mesh"
	DefaultRootCommonName       = "Mesh Root CA"
	// IstiodSAN is the name istiod serves under; Istio's tooling puts it on
	// every plug-in intermediate.
	IstiodSAN = "istiod." + "istio-system" + ".svc"
)

// Key algorithms accepted by --key-algorithm.
const (
	KeyRSA   = "rsa"
	KeyECDSA = "ecdsa"
)

// KeySpec selects the algorithm and size of a new private key.
type KeySpec struct {
	// Algorithm is KeyRSA or KeyECDSA.
	Algorithm string
	// Size is the RSA modulus in bits (2048, 3072, 4096) or the ECDSA
	// curve size (256, 384); 0 means the default for the algorithm.
	Size int
}

// DefaultSize is the size used when Size is 0.
func (k KeySpec) DefaultSize() int {
	if k.Size != 0 {
		return k.Size
	}
	if k.Algorithm == KeyECDSA {
		return 256
	}
	return 4096
}

// Validate names the flag in its error because KeySpec comes straight from
// --key-algorithm/--key-size.
func (k KeySpec) Validate() error {
	switch k.Algorithm {
	case KeyRSA:
		switch k.DefaultSize() {
		case 2048, 3072, 4096:
			return nil
		}
		return fmt.Errorf("--key-size %d is not supported for rsa; use 2048, 3072 or 4096", k.Size)
	case KeyECDSA:
		switch k.DefaultSize() {
		case 256, 384:
			return nil
		}
		return fmt.Errorf("--key-size %d is not supported for ecdsa; use 256 (P-256) or 384 (P-384)", k.Size)
	}
	return fmt.Errorf("--key-algorithm %q is not supported; use rsa or ecdsa", k.Algorithm)
}

// CA is a certificate with its private key.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Key     crypto.Signer
	KeyPEM  []byte

	certPath string // the file it was read from, for messages
}

// RootRequest describes a new root CA.
type RootRequest struct {
	CommonName string
	Org        string
	Validity   time.Duration
	Key        KeySpec
}

// IntermediateRequest describes a new per-cluster intermediate CA.
type IntermediateRequest struct {
	Cluster  string
	Org      string
	Validity time.Duration
	Key      KeySpec
}

// quiet silences cfssl's package-level logger: it prints INFO lines for
// every signature, which would interleave with a command's own output.
func quiet() { cflog.Level = cflog.LevelFatal }

// caProfile is the explicit signing policy for a CA certificate: cfssl's
// defaults (one year, server/client usages, no path length) are wrong for a
// mesh CA, so every field that matters is set here. maxPathLen < 0 means no
// constraint (a root that may sign intermediates).
func caProfile(validity time.Duration, maxPathLen int) *cfconfig.Signing {
	p := &cfconfig.SigningProfile{
		Usage:        []string{"cert sign", "crl sign"},
		Expiry:       validity,
		ExpiryString: validity.String(),
		CAConstraint: cfconfig.CAConstraint{IsCA: true},
		// The SAN of an intermediate is passed as an extension, because
		// cfssl drops DNS names from CA certificates.
		ExtensionWhitelist: map[string]bool{oidSubjectAltName.String(): true},
	}
	if maxPathLen == 0 {
		p.CAConstraint.MaxPathLen = 0
		p.CAConstraint.MaxPathLenZero = true
	}
	return &cfconfig.Signing{Default: p, Profiles: map[string]*cfconfig.SigningProfile{}}
}

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// dnsSANExtension encodes a subjectAltName holding DNS names (RFC 5280
// GeneralNames, dNSName is [2] IA5String).
func dnsSANExtension(names ...string) (signer.Extension, error) {
	raw := make([]asn1.RawValue, 0, len(names))
	for _, n := range names {
		raw = append(raw, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte(n)})
	}
	der, err := asn1.Marshal(raw)
	if err != nil {
		return signer.Extension{}, err
	}
	return signer.Extension{ID: cfconfig.OID(oidSubjectAltName), Value: hex.EncodeToString(der)}, nil
}

// newKey makes a key through cfssl and encodes it the way openssl does
// (PKCS#1 for RSA, SEC 1 for ECDSA), which istiod reads.
func newKey(spec KeySpec) (crypto.Signer, []byte, error) {
	if err := spec.Validate(); err != nil {
		return nil, nil, err
	}
	kr := &csr.KeyRequest{A: spec.Algorithm, S: spec.DefaultSize()}
	priv, err := kr.Generate()
	if err != nil {
		return nil, nil, fmt.Errorf("generate %s-%d key: %w", spec.Algorithm, spec.DefaultSize(), err)
	}
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		return k, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, nil, err
		}
		return k, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
	}
	return nil, nil, fmt.Errorf("unexpected key type %T", priv)
}

// NewRoot makes a self-signed root CA.
func NewRoot(req RootRequest) (*CA, error) {
	quiet()
	if req.Validity <= 0 {
		return nil, fmt.Errorf("--validity must be positive")
	}
	key, keyPEM, err := newKey(req.Key)
	if err != nil {
		return nil, err
	}
	cn := req.CommonName
	if cn == "" {
		cn = DefaultRootCommonName
	}
	cr := &csr.CertificateRequest{CN: cn, Names: names(req.Org), CA: &csr.CAConfig{}}
	csrPEM, err := csr.Generate(key, cr)
	if err != nil {
		return nil, fmt.Errorf("root certificate request: %w", err)
	}
	s, err := local.NewSigner(key, nil, signer.DefaultSigAlgo(key), caProfile(req.Validity, -1))
	if err != nil {
		return nil, fmt.Errorf("root signer: %w", err)
	}
	certPEM, err := s.Sign(signer.SignRequest{Request: string(csrPEM)})
	if err != nil {
		return nil, fmt.Errorf("sign root: %w", err)
	}
	return newCA(certPEM, key, keyPEM)
}

// NewIntermediate makes a cluster's intermediate CA signed by root: CA with
// path length 0 (it signs workloads, never another CA), the cluster in its
// subject, istiod's name as SAN, and a NotAfter never beyond the root's,
// since a chain is only as valid as its shortest-lived link.
func NewIntermediate(root *CA, req IntermediateRequest, now time.Time) (*CA, error) {
	quiet()
	if req.Cluster == "" {
		return nil, fmt.Errorf("a cluster name is required")
	}
	if req.Validity <= 0 {
		return nil, fmt.Errorf("--validity must be positive")
	}
	if err := CheckIssuer(root.Cert, "root certificate", now); err != nil {
		return nil, err
	}
	key, keyPEM, err := newKey(req.Key)
	if err != nil {
		return nil, err
	}
	org := req.Org
	if org == "" {
		org = DefaultOrg
	}
	cr := &csr.CertificateRequest{
		CN:    "Intermediate CA " + req.Cluster,
		Names: []csr.Name{{O: org, OU: req.Cluster, L: req.Cluster}},
		CA:    &csr.CAConfig{PathLength: 0, PathLenZero: true},
	}
	csrPEM, err := csr.Generate(key, cr)
	if err != nil {
		return nil, fmt.Errorf("intermediate certificate request for %s: %w", req.Cluster, err)
	}
	notAfter := now.Add(req.Validity)
	if notAfter.After(root.Cert.NotAfter) {
		notAfter = root.Cert.NotAfter
	}
	s, err := local.NewSigner(root.Key, root.Cert, signer.DefaultSigAlgo(root.Key), caProfile(req.Validity, 0))
	if err != nil {
		return nil, fmt.Errorf("signer from root: %w", err)
	}
	san, err := dnsSANExtension(IstiodSAN)
	if err != nil {
		return nil, err
	}
	certPEM, err := s.Sign(signer.SignRequest{Request: string(csrPEM), NotAfter: notAfter, Extensions: []signer.Extension{san}})
	if err != nil {
		return nil, fmt.Errorf("sign intermediate for %s: %w", req.Cluster, err)
	}
	return newCA(certPEM, key, keyPEM)
}

func names(org string) []csr.Name {
	if org == "" {
		org = DefaultOrg
	}
	return []csr.Name{{O: org}}
}

func newCA(certPEM []byte, key crypto.Signer, keyPEM []byte) (*CA, error) {
	certs, err := ParseCertificates(certPEM, "signed certificate")
	if err != nil {
		return nil, err
	}
	return &CA{Cert: certs[0], CertPEM: certPEM, Key: key, KeyPEM: keyPEM}, nil
}

// CheckIssuer refuses a certificate that cannot sign: not a CA, no
// cert-sign usage, or not valid now. name is the file the error mentions.
func CheckIssuer(c *x509.Certificate, name string, now time.Time) error {
	if !c.IsCA || !c.BasicConstraintsValid {
		return fmt.Errorf("%s: %q is not a CA certificate (basicConstraints CA:false); pass a CA certificate with --root-cert", name, c.Subject.CommonName)
	}
	if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("%s: %q lacks the certSign key usage; pass a CA certificate that may sign certificates", name, c.Subject.CommonName)
	}
	if now.After(c.NotAfter) {
		return fmt.Errorf("%s: %q expired on %s; make a new root with `kubectl mesh certs root --rotate`", name, c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(c.NotBefore) {
		return fmt.Errorf("%s: %q is not valid before %s; check the system clock", name, c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// NewBundle assembles the cacerts files for a cluster. roots is the
// content of root-cert.pem: the issuing root, or during a root rotation the
// transition bundle (old and new roots). cert-chain.pem is the
// intermediate followed by the root that issued it, the order istiod sends
// to peers.
func NewBundle(inter *CA, issuer *x509.Certificate, roots []byte) *Bundle {
	chain := append([]byte{}, inter.CertPEM...)
	chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuer.Raw})...)
	return &Bundle{CACert: inter.CertPEM, CAKey: inter.KeyPEM, RootCert: roots, CertChain: chain}
}
