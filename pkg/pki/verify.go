package pki

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// CertInfo describes one certificate in a verification report.
type CertInfo struct {
	Subject     string    `json:"subject"`
	Fingerprint string    `json:"fingerprint"`
	NotBefore   time.Time `json:"notBefore"`
	NotAfter    time.Time `json:"notAfter"`
}

// InfoOf is how reports and the certs commands show a certificate.
func InfoOf(c *x509.Certificate) CertInfo {
	return CertInfo{Subject: c.Subject.String(), Fingerprint: Fingerprint(c), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC()}
}

// Report is what verify found about one cluster's cacerts (from a Secret
// or a directory). Errors make verification fail; warnings do not.
type Report struct {
	// Source names the cluster, context or directory.
	Source       string     `json:"source"`
	Roots        []CertInfo `json:"roots,omitempty"`
	Intermediate *CertInfo  `json:"intermediate,omitempty"`
	// IssuingRoot is the fingerprint of the root in root-cert.pem that
	// signed the intermediate.
	IssuingRoot string   `json:"issuingRoot,omitempty"`
	Errors      []string `json:"errors,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
}

// OK is true when nothing failed.
func (r *Report) OK() bool { return len(r.Errors) == 0 }

func (r *Report) errorf(format string, a ...any) {
	r.Errors = append(r.Errors, fmt.Sprintf(format, a...))
}
func (r *Report) warnf(format string, a ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, a...))
}

// checkValidity records an expired certificate as an error and one that
// expires within warnWithin as a warning.
func (r *Report) checkValidity(c *x509.Certificate, file string, now time.Time, warnWithin time.Duration) {
	switch {
	case now.After(c.NotAfter):
		r.errorf("%s: %q expired on %s; issue a new one (kubectl mesh certs rotate)", file, c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		r.errorf("%s: %q is not valid before %s; check the clock", file, c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339))
	case c.NotAfter.Sub(now) < warnWithin:
		r.warnf("%s: %q expires on %s (in %s); rotate it soon", file, c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339), c.NotAfter.Sub(now).Round(time.Hour))
	}
}

// LongLivedIntermediate is the lifetime beyond which an intermediate gets a
// warning: its key lives in the cluster, and Istio's own tooling issues
// intermediates for two years.
const LongLivedIntermediate = 3 * 365 * 24 * time.Hour

// VerifyBundle checks one cluster's plug-in CA the way istiod and its peers
// use it. What breaks a mesh is an error: a key that does not match,
// ca-cert.pem not verifying to root-cert.pem through cert-chain.pem (with
// the options istiod verifies it with, so SHA-1 signatures and unsuitable
// key usages fail as they do in istiod), an expired or not yet valid
// certificate, a root-cert.pem that holds no root. What works but is weaker
// than what kubectl mesh makes is a warning: an intermediate without path
// length 0, a cert-chain.pem without the root, a long-lived intermediate or
// one outliving its root, a SHA-1 root, and anything expiring within
// warnWithin. root-cert.pem may be a transition bundle of several roots.
func VerifyBundle(source string, b *Bundle, now time.Time, warnWithin time.Duration) *Report {
	r := &Report{Source: source}
	roots, err := b.Roots()
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	pool := r.checkRoots(roots, now, warnWithin)
	inter, err := b.Intermediate()
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
		return r
	}
	r.checkIntermediate(inter, roots, now, warnWithin)
	chain, chainErr := b.Chain()
	if chainErr != nil {
		r.Errors = append(r.Errors, chainErr.Error())
	}
	intermediates := r.checkChain(chain, inter, roots, now, warnWithin)
	r.verifyAsIstiod(inter, chain, roots, pool, intermediates, now)
	if key, err := ParseKey(b.CAKey, CAKeyFile); err != nil {
		r.Errors = append(r.Errors, err.Error())
	} else if !KeyMatches(inter, key) {
		r.errorf("%s: the key does not match %s; install the key made with that certificate", CAKeyFile, CACertFile)
	}
	return r
}

// checkRoots checks root-cert.pem's certificates and returns them as a pool.
func (r *Report) checkRoots(roots []*x509.Certificate, now time.Time, warnWithin time.Duration) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, root := range roots {
		r.Roots = append(r.Roots, InfoOf(root))
		pool.AddCert(root)
		if !root.IsCA {
			r.errorf("%s: %q is not a CA certificate; root-cert.pem must hold only root CAs", RootCertFile, root.Subject.CommonName)
		}
		if !isSelfSigned(root) {
			r.errorf("%s: %q is not self-signed; root-cert.pem must hold the root, not an intermediate", RootCertFile, root.Subject.CommonName)
		}
		if sha1Signed(root) {
			r.warnf("%s: %q signs itself with SHA-1 (%s); peers do not check a root's own signature, but make new roots with SHA-256 (kubectl mesh certs root --rotate)", RootCertFile, root.Subject.CommonName, root.SignatureAlgorithm)
		}
		r.checkValidity(root, RootCertFile, now, warnWithin)
	}
	return pool
}

// checkIntermediate checks ca-cert.pem on its own.
func (r *Report) checkIntermediate(inter *x509.Certificate, roots []*x509.Certificate, now time.Time, warnWithin time.Duration) {
	info := InfoOf(inter)
	r.Intermediate = &info
	switch {
	case !inter.IsCA:
		r.errorf("%s: %q is not a CA certificate; istiod cannot sign workload certificates with it; make one with `kubectl mesh certs intermediate`", CACertFile, inter.Subject.CommonName)
	case isSelfSigned(inter) && contains(roots, inter):
		r.warnf("%s: %q is the root itself, so the root's key is in the cluster; install an intermediate made from it (kubectl mesh certs intermediate)", CACertFile, inter.Subject.CommonName)
	case inter.MaxPathLen != 0 || !inter.MaxPathLenZero:
		r.warnf("%s: %q has no path length 0 constraint, so its key could sign further CAs that every cluster trusts; istiod works with it, but `kubectl mesh certs intermediate` makes one limited to workload certificates", CACertFile, inter.Subject.CommonName)
	}
	r.checkValidity(inter, CACertFile, now, warnWithin)
	if life := inter.NotAfter.Sub(inter.NotBefore); life > LongLivedIntermediate {
		r.warnf("%s: %q is valid for %s; its key lives in the cluster, so rotate it at least every two years (kubectl mesh certs rotate)", CACertFile, inter.Subject.CommonName, years(life))
	}
}

// checkChain checks cert-chain.pem's order and validity and returns the CAs
// after its first certificate, for verification.
func (r *Report) checkChain(chain []*x509.Certificate, inter *x509.Certificate, roots []*x509.Certificate, now time.Time, warnWithin time.Duration) *x509.CertPool {
	intermediates := x509.NewCertPool()
	for i, c := range chain {
		if i > 0 && !contains(roots, c) {
			r.checkValidity(c, CertChainFile, now, warnWithin)
		}
		if i > 0 {
			intermediates.AddCert(c)
		}
	}
	if len(chain) > 0 {
		switch last := chain[len(chain)-1]; {
		case !chain[0].Equal(inter):
			r.errorf("%s: the first certificate is not %s; peers build the chain from it: it must be the intermediate, then any CA between it and the root, then the root", CertChainFile, CACertFile)
		case !contains(roots, last) && !isSelfSigned(inter):
			r.warnf("%s: does not end with the root of %s; istiod works with it, but Istio's guides and kubectl mesh put the root last (cat %s %s > %s)", CertChainFile, RootCertFile, CACertFile, RootCertFile, CertChainFile)
		}
	}
	return intermediates
}

// verifyAsIstiod verifies the intermediate as istiod verifies a plug-in CA:
// ca-cert.pem through cert-chain.pem to root-cert.pem, default key usages.
func (r *Report) verifyAsIstiod(inter *x509.Certificate, chain, roots []*x509.Certificate, pool, intermediates *x509.CertPool, now time.Time) {
	verified, err := inter.Verify(x509.VerifyOptions{Roots: pool, Intermediates: intermediates, CurrentTime: now})
	var unknown x509.UnknownAuthorityError
	sha1 := slices.ContainsFunc(append([]*x509.Certificate{inter}, chain...), func(c *x509.Certificate) bool { return sha1Signed(c) && !isSelfSigned(c) })
	switch {
	case err == nil:
		path := verified[0]
		issuer := path[len(path)-1]
		r.IssuingRoot = Fingerprint(issuer)
		if inter.NotAfter.After(issuer.NotAfter) {
			r.warnf("%s: %q outlives its root (%s > %s); it stops working when the root expires; re-issue it, capped at the root's expiry", CACertFile, inter.Subject.CommonName, inter.NotAfter.UTC().Format(time.RFC3339), issuer.NotAfter.UTC().Format(time.RFC3339))
		}
	case expiredInChain(now, inter, chain, roots):
		// Already an error of its own.
	case sha1:
		r.errorf("%s: %q (or a CA in %s) is signed with SHA-1, which istiod (like every Go program) refuses; re-issue it with SHA-256 (kubectl mesh certs intermediate)", CACertFile, inter.Subject.CommonName, CertChainFile)
	case errors.As(err, &unknown):
		r.errorf("%s: %q is not signed by any root in %s (nor through the CAs in %s); re-create it from this root with `kubectl mesh certs intermediate`, or install the root it was made from", CACertFile, inter.Subject.CommonName, RootCertFile, CertChainFile)
	default:
		r.errorf("%s: does not verify against %s through %s as istiod checks it: %v", CACertFile, RootCertFile, CertChainFile, err)
	}
}

// expiredInChain tells a verification that failed because a certificate
// on the way is outside its validity, which checkValidity reports.
func expiredInChain(now time.Time, inter *x509.Certificate, chain, roots []*x509.Certificate) bool {
	for _, c := range append(append([]*x509.Certificate{inter}, chain...), roots...) {
		if now.After(c.NotAfter) || now.Before(c.NotBefore) {
			return true
		}
	}
	return false
}

func contains(certs []*x509.Certificate, c *x509.Certificate) bool {
	return slices.ContainsFunc(certs, c.Equal)
}

// isSelfSigned: a root signs itself. A SHA-1 self-signature cannot be
// checked in Go, and need not be: peers trust a root as it is.
func isSelfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		return false
	}
	err := c.CheckSignatureFrom(c)
	var insecure x509.InsecureAlgorithmError
	return err == nil || errors.As(err, &insecure)
}

func sha1Signed(c *x509.Certificate) bool {
	switch c.SignatureAlgorithm {
	case x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1:
		return true
	}
	return false
}

// years shows a lifetime in years, e.g. "10 years".
func years(d time.Duration) string {
	y := float64(d) / float64(365*24*time.Hour)
	return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", y), "0"), ".") + " years"
}

// CheckShared checks that the clusters can authenticate each other: every
// cluster's issuing root must be in every other cluster's root-cert.pem.
// During a root rotation the transition bundle makes that hold while
// clusters issue from different roots. It returns the fingerprints of the
// roots every cluster trusts and one error per broken pair, naming both.
func CheckShared(reports []*Report) (shared []string, errs []string) {
	trusts := func(r *Report, fp string) bool {
		return slices.ContainsFunc(r.Roots, func(c CertInfo) bool { return c.Fingerprint == fp })
	}
	for i, r := range reports {
		for _, c := range r.Roots {
			all := true
			for _, o := range reports {
				all = all && trusts(o, c.Fingerprint)
			}
			if all && !slices.Contains(shared, c.Fingerprint) {
				shared = append(shared, c.Fingerprint)
			}
		}
		for j, o := range reports {
			if i == j || o.IssuingRoot == "" {
				continue
			}
			if !trusts(r, o.IssuingRoot) {
				errs = append(errs, fmt.Sprintf("%s does not trust the root %s issues from (%s); install the same root in both (kubectl mesh certs install) or, while rotating roots, the transition bundle", r.Source, o.Source, short(o.IssuingRoot)))
			}
		}
	}
	return shared, errs
}

// short abbreviates a fingerprint for messages and tables; the JSON output
// carries it whole.
func short(fp string) string {
	if len(fp) <= 23 {
		return fp
	}
	return fp[:23] + "…"
}

// Short is the abbreviated fingerprint shown in tables.
func Short(fp string) string { return short(fp) }

// FingerprintsOf lists the fingerprints of certificates, for messages.
func FingerprintsOf(certs []*x509.Certificate) string {
	fps := make([]string, 0, len(certs))
	for _, c := range certs {
		fps = append(fps, Fingerprint(c))
	}
	return strings.Join(fps, ", ")
}
