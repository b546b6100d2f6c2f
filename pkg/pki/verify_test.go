package pki_test

import (
	"crypto/x509"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki/pkitest"
)

func made(t *testing.T, cn string, parent *pkitest.CA, change func(*x509.Certificate)) *pkitest.CA {
	t.Helper()
	ca, err := pkitest.Issue(cn, parent, func(c *x509.Certificate) {
		c.MaxPathLenZero = parent != nil
		if change != nil {
			change(c)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// VerifyBundle fails only on what breaks istiod or its peers, and warns on
// what is merely weaker than what kubectl mesh makes.
func TestVerifyBundleMatchesIstio(t *testing.T) {
	now := time.Now()
	root := made(t, "root", nil, func(c *x509.Certificate) { c.NotAfter = now.Add(10 * 365 * 24 * time.Hour) })
	sha1Root := made(t, "sha1 root", nil, func(c *x509.Certificate) {
		c.NotAfter = now.Add(10 * 365 * 24 * time.Hour)
		c.SignatureAlgorithm = x509.SHA1WithRSA
	})
	org := made(t, "org CA", root, func(c *x509.Certificate) { c.MaxPathLenZero, c.MaxPathLen = false, 1 })
	bundle := func(inter *pkitest.CA, roots []byte, chain ...*pkitest.CA) *pki.Bundle {
		b := &pki.Bundle{CACert: inter.CertPEM, CAKey: inter.KeyPEM, RootCert: roots}
		for _, c := range chain {
			b.CertChain = append(b.CertChain, c.CertPEM...)
		}
		return b
	}
	good := made(t, "good", root, nil)
	tests := map[string]struct {
		bundle   *pki.Bundle
		wantErr  string // "" for none
		wantWarn string // "" for none
	}{
		"as kubectl mesh makes it": {bundle: bundle(good, root.CertPEM, good, root)},
		"three levels: root, an organisation's CA, the cluster's": {
			bundle: func() *pki.Bundle { c := made(t, "cluster", org, nil); return bundle(c, root.CertPEM, c, org, root) }(),
		},
		"no path length constraint": {
			bundle: func() *pki.Bundle {
				c := made(t, "no pathlen", root, func(c *x509.Certificate) { c.MaxPathLenZero = false })
				return bundle(c, root.CertPEM, c, root)
			}(),
			wantWarn: "no path length 0 constraint",
		},
		"cert-chain.pem without the root": {bundle: bundle(good, root.CertPEM, good), wantWarn: "does not end with the root"},
		"long-lived intermediate": {
			bundle: func() *pki.Bundle {
				c := made(t, "old", root, func(c *x509.Certificate) { c.NotAfter = now.Add(5 * 365 * 24 * time.Hour) })
				return bundle(c, root.CertPEM, c, root)
			}(),
			wantWarn: "is valid for 5 years",
		},
		"SHA-1 root": {
			bundle: func() *pki.Bundle {
				c := made(t, "under sha1 root", sha1Root, nil)
				return bundle(c, sha1Root.CertPEM, c, sha1Root)
			}(),
			wantWarn: "signs itself with SHA-1",
		},
		"SHA-1 signed intermediate": {
			bundle: func() *pki.Bundle {
				c := made(t, "sha1", root, func(c *x509.Certificate) { c.SignatureAlgorithm = x509.SHA1WithRSA })
				return bundle(c, root.CertPEM, c, root)
			}(),
			wantErr: "istiod (like every Go program) refuses",
		},
		"not yet valid": {
			bundle: func() *pki.Bundle {
				c := made(t, "future", root, func(c *x509.Certificate) { c.NotBefore = now.Add(time.Hour) })
				return bundle(c, root.CertPEM, c, root)
			}(),
			wantErr: "is not valid before",
		},
		"chain through a CA root-cert.pem lacks": {
			bundle:  func() *pki.Bundle { c := made(t, "cluster", org, nil); return bundle(c, sha1Root.CertPEM, c, org) }(),
			wantErr: "is not signed by any root in root-cert.pem",
		},
		"key usage istiod rejects": {
			bundle: func() *pki.Bundle {
				c := made(t, "client only", root, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} })
				return bundle(c, root.CertPEM, c, root)
			}(),
			wantErr: "as istiod checks it",
		},
		"key of another certificate": {
			bundle:  &pki.Bundle{CACert: good.CertPEM, CAKey: root.KeyPEM, RootCert: root.CertPEM, CertChain: pki.Concat(good.CertPEM, root.CertPEM)},
			wantErr: "ca-key.pem: the key does not match",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := pki.VerifyBundle("c", tc.bundle, now, 30*24*time.Hour)
			switch {
			case tc.wantErr == "" && !r.OK():
				t.Fatalf("errors %v, want none", r.Errors)
			case tc.wantErr != "" && !slices.ContainsFunc(r.Errors, func(e string) bool { return strings.Contains(e, tc.wantErr) }):
				t.Fatalf("errors %v, want one containing %q", r.Errors, tc.wantErr)
			case tc.wantErr != "" && len(r.Errors) != 1:
				t.Fatalf("errors %v, want only the one containing %q", r.Errors, tc.wantErr)
			case tc.wantWarn == "" && tc.wantErr == "" && len(r.Warnings) > 0:
				t.Fatalf("warnings %v, want none", r.Warnings)
			case tc.wantWarn != "" && (len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], tc.wantWarn)):
				t.Fatalf("warnings %v, want only one containing %q", r.Warnings, tc.wantWarn)
			}
			if r.OK() && r.IssuingRoot == "" {
				t.Error("a bundle that verifies has no issuing root")
			}
		})
	}
}
