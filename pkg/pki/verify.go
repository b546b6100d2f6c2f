package pki

import (
	"bytes"
	"crypto/x509"
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

func infoOf(c *x509.Certificate) CertInfo {
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

// VerifyBundle checks one cluster's plug-in CA the way istiod and its peers
// will use it: the intermediate chains to a root of root-cert.pem (which
// may be a transition bundle of several roots), cert-chain.pem is exactly
// the intermediate followed by its issuing root, the key matches, the
// intermediate is a CA limited to path length 0, nothing is expired and
// nothing outlives its issuer.
func VerifyBundle(source string, b *Bundle, now time.Time, warnWithin time.Duration) *Report {
	r := &Report{Source: source}
	roots, err := b.Roots()
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	pool := x509.NewCertPool()
	for _, root := range roots {
		r.Roots = append(r.Roots, infoOf(root))
		pool.AddCert(root)
		if !root.IsCA {
			r.errorf("%s: %q is not a CA certificate; root-cert.pem must hold only root CAs", RootCertFile, root.Subject.CommonName)
		}
		if root.CheckSignatureFrom(root) != nil {
			r.errorf("%s: %q is not self-signed; root-cert.pem must hold the root, not an intermediate", RootCertFile, root.Subject.CommonName)
		}
		r.checkValidity(root, RootCertFile, now, warnWithin)
	}
	inter, err := b.Intermediate()
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
		return r
	}
	info := infoOf(inter)
	r.Intermediate = &info
	if !inter.IsCA {
		r.errorf("%s: %q is not a CA certificate; istiod cannot sign workload certificates with it; make one with `kubectl mesh certs intermediate`", CACertFile, inter.Subject.CommonName)
	} else if inter.MaxPathLen != 0 || !inter.MaxPathLenZero {
		r.errorf("%s: %q has no path length 0 constraint; an intermediate that may sign further CAs widens the trust; make one with `kubectl mesh certs intermediate`", CACertFile, inter.Subject.CommonName)
	}
	r.checkValidity(inter, CACertFile, now, warnWithin)

	var issuer *x509.Certificate
	for _, root := range roots {
		if inter.CheckSignatureFrom(root) == nil {
			issuer = root
			break
		}
	}
	if issuer == nil {
		r.errorf("%s: %q is not signed by any root in %s; re-create it from this root with `kubectl mesh certs intermediate`", CACertFile, inter.Subject.CommonName, RootCertFile)
	} else {
		r.IssuingRoot = Fingerprint(issuer)
		if _, err := inter.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil && now.Before(inter.NotAfter) && now.Before(issuer.NotAfter) {
			r.errorf("%s: does not verify against %s: %v", CACertFile, RootCertFile, err)
		}
		if inter.NotAfter.After(issuer.NotAfter) {
			r.errorf("%s: %q outlives its root (%s > %s); re-issue it, its validity is capped at the root's", CACertFile, inter.Subject.CommonName, inter.NotAfter.UTC().Format(time.RFC3339), issuer.NotAfter.UTC().Format(time.RFC3339))
		}
	}

	if key, err := ParseKey(b.CAKey, CAKeyFile); err != nil {
		r.Errors = append(r.Errors, err.Error())
	} else if !KeyMatches(inter, key) {
		r.errorf("%s: the key does not match %s; install the key made with that certificate", CAKeyFile, CACertFile)
	}

	chain, err := b.Chain()
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
		return r
	}
	switch {
	case len(chain) != 2:
		r.errorf("%s: holds %d certificates; it must be exactly the intermediate then its root", CertChainFile, len(chain))
	case !bytes.Equal(chain[0].Raw, inter.Raw):
		r.errorf("%s: the first certificate is not %s; it must be the intermediate then its root", CertChainFile, CACertFile)
	case issuer != nil && !bytes.Equal(chain[1].Raw, issuer.Raw):
		r.errorf("%s: the second certificate is not the root that signed %s; it must be the intermediate then its root", CertChainFile, CACertFile)
	}
	return r
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
