package pki

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// RSA-4096 keys take a while; the tests share one root per algorithm.
var (
	rootsOnce sync.Once
	testRoots map[string]*CA
	rootsErr  error
)

func roots(t *testing.T) map[string]*CA {
	t.Helper()
	rootsOnce.Do(func() {
		testRoots = map[string]*CA{}
		for _, spec := range []KeySpec{{Algorithm: KeyRSA, Size: 2048}, {Algorithm: KeyECDSA}} {
			r, err := NewRoot(RootRequest{Validity: DefaultRootValidity, Key: spec})
			if err != nil {
				rootsErr = err
				return
			}
			testRoots[spec.Algorithm] = r
		}
	})
	if rootsErr != nil {
		t.Fatal(rootsErr)
	}
	return testRoots
}

func TestRootProperties(t *testing.T) {
	now := time.Now()
	for alg, root := range roots(t) {
		t.Run(alg, func(t *testing.T) {
			c := root.Cert
			if !c.IsCA || !c.BasicConstraintsValid {
				t.Errorf("root is not a CA: IsCA=%v", c.IsCA)
			}
			if c.MaxPathLen != -1 {
				t.Errorf("root MaxPathLen = %d, want unconstrained (-1) so it can sign intermediates", c.MaxPathLen)
			}
			if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
				t.Errorf("root key usage = %v, want certSign|cRLSign", c.KeyUsage)
			}
			if len(c.ExtKeyUsage) != 0 {
				t.Errorf("root has extended key usages %v", c.ExtKeyUsage)
			}
			if c.CheckSignatureFrom(c) != nil {
				t.Error("root is not self-signed")
			}
			if got := c.NotAfter.Sub(now); got < DefaultRootValidity-time.Hour || got > DefaultRootValidity+time.Hour {
				t.Errorf("root validity %s, want about %s", got, DefaultRootValidity)
			}
			if c.Subject.CommonName != DefaultRootCommonName || !slices.Equal(c.Subject.Organization, []string{DefaultOrg}) {
				t.Errorf("root subject = %s", c.Subject)
			}
			switch alg {
			case KeyRSA:
				if _, ok := c.PublicKey.(*rsa.PublicKey); !ok {
					t.Errorf("public key %T, want RSA", c.PublicKey)
				}
			case KeyECDSA:
				if k, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve.Params().BitSize != 256 {
					t.Errorf("public key %T, want ECDSA P-256", c.PublicKey)
				}
			}
		})
	}
}

func TestIntermediateProperties(t *testing.T) {
	now := time.Now()
	shortRoot, err := NewRoot(RootRequest{Validity: 90 * 24 * time.Hour, Key: KeySpec{Algorithm: KeyECDSA}})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		root         *CA
		validity     time.Duration
		wantNotAfter time.Time
	}{
		"rsa":                   {roots(t)[KeyRSA], DefaultIntermediateValidity, now.Add(DefaultIntermediateValidity)},
		"ecdsa":                 {roots(t)[KeyECDSA], DefaultIntermediateValidity, now.Add(DefaultIntermediateValidity)},
		"capped at the root":    {shortRoot, DefaultIntermediateValidity, shortRoot.Cert.NotAfter},
		"shorter than the root": {shortRoot, 24 * time.Hour, now.Add(24 * time.Hour)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			inter, err := NewIntermediate(tc.root, IntermediateRequest{Cluster: "cluster1", Validity: tc.validity, Key: KeySpec{Algorithm: KeyECDSA}}, now)
			if err != nil {
				t.Fatal(err)
			}
			c := inter.Cert
			if !c.IsCA || c.MaxPathLen != 0 || !c.MaxPathLenZero {
				t.Errorf("IsCA=%v MaxPathLen=%d MaxPathLenZero=%v, want a CA with pathlen 0", c.IsCA, c.MaxPathLen, c.MaxPathLenZero)
			}
			if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
				t.Errorf("key usage = %v, want certSign|cRLSign", c.KeyUsage)
			}
			if !slices.Equal(c.DNSNames, []string{IstiodSAN}) {
				t.Errorf("SAN = %v, want [%s]", c.DNSNames, IstiodSAN)
			}
			if !strings.Contains(c.Subject.String(), "cluster1") {
				t.Errorf("subject %s does not name the cluster", c.Subject)
			}
			if d := c.NotAfter.Sub(tc.wantNotAfter); d < -time.Minute || d > time.Minute {
				t.Errorf("NotAfter = %s, want %s", c.NotAfter, tc.wantNotAfter)
			}
			if c.NotAfter.After(tc.root.Cert.NotAfter) {
				t.Errorf("intermediate outlives its root: %s > %s", c.NotAfter, tc.root.Cert.NotAfter)
			}
			pool := x509.NewCertPool()
			pool.AddCert(tc.root.Cert)
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("intermediate does not chain to the root: %v", err)
			}
		})
	}
}

func TestBundleChainOrderAndVerify(t *testing.T) {
	now := time.Now()
	root := roots(t)[KeyECDSA]
	inter, err := NewIntermediate(root, IntermediateRequest{Cluster: "cluster2", Validity: DefaultIntermediateValidity, Key: KeySpec{Algorithm: KeyECDSA}}, now)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBundle(inter, root.Cert, root.CertPEM)
	chain, err := b.Chain()
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 2 || !chain[0].Equal(inter.Cert) || !chain[1].Equal(root.Cert) {
		t.Fatalf("cert-chain.pem = %v, want intermediate then root", chain)
	}
	if r := VerifyBundle("cluster2", b, now, 30*24*time.Hour); !r.OK() || len(r.Warnings) != 0 {
		t.Fatalf("a fresh bundle does not verify: %+v", r)
	}
}

func TestVerifyBundleFindsProblems(t *testing.T) {
	now := time.Now()
	root := roots(t)[KeyECDSA]
	other := roots(t)[KeyRSA]
	mk := func(r *CA, v time.Duration) *CA {
		c, err := NewIntermediate(r, IntermediateRequest{Cluster: "c", Validity: v, Key: KeySpec{Algorithm: KeyECDSA}}, now)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good := mk(root, DefaultIntermediateValidity)
	short := mk(root, 10*24*time.Hour)
	foreign := mk(other, DefaultIntermediateValidity)
	tests := map[string]struct {
		bundle   *Bundle
		at       time.Time
		wantErr  string
		wantWarn string
	}{
		"chain reversed":     {&Bundle{CACert: good.CertPEM, CAKey: good.KeyPEM, RootCert: root.CertPEM, CertChain: Concat(root.CertPEM, good.CertPEM)}, now, "cert-chain.pem: the first certificate is not ca-cert.pem", ""},
		"chain without root": {&Bundle{CACert: good.CertPEM, CAKey: good.KeyPEM, RootCert: root.CertPEM, CertChain: good.CertPEM}, now, "", "cert-chain.pem: does not end with the root"},
		"wrong key":          {&Bundle{CACert: good.CertPEM, CAKey: short.KeyPEM, RootCert: root.CertPEM, CertChain: Concat(good.CertPEM, root.CertPEM)}, now, "ca-key.pem: the key does not match", ""},
		"other root":         {&Bundle{CACert: foreign.CertPEM, CAKey: foreign.KeyPEM, RootCert: root.CertPEM, CertChain: Concat(foreign.CertPEM, other.CertPEM)}, now, "is not signed by any root in root-cert.pem", ""},
		"root as ca-cert":    {&Bundle{CACert: root.CertPEM, CAKey: root.KeyPEM, RootCert: root.CertPEM, CertChain: Concat(root.CertPEM, root.CertPEM)}, now, "", "is the root itself"},
		"expired":            {NewBundle(short, root.Cert, root.CertPEM), now.Add(11 * 24 * time.Hour), "ca-cert.pem: \"Intermediate CA c\" expired", ""},
		"expires soon":       {NewBundle(short, root.Cert, root.CertPEM), now, "", "ca-cert.pem: \"Intermediate CA c\" expires on"},
		"key not pem":        {&Bundle{CACert: good.CertPEM, CAKey: []byte("nope"), RootCert: root.CertPEM, CertChain: Concat(good.CertPEM, root.CertPEM)}, now, "ca-key.pem: not a PEM file", ""},
		"transition bundle":  {NewBundle(good, root.Cert, Concat(other.CertPEM, root.CertPEM)), now, "", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := VerifyBundle("c", tc.bundle, tc.at, 30*24*time.Hour)
			if tc.wantErr == "" && !r.OK() {
				t.Fatalf("unexpected errors: %v", r.Errors)
			}
			if tc.wantErr != "" && !slices.ContainsFunc(r.Errors, func(e string) bool { return strings.Contains(e, tc.wantErr) }) {
				t.Fatalf("errors %v, want one containing %q", r.Errors, tc.wantErr)
			}
			if tc.wantWarn != "" && !slices.ContainsFunc(r.Warnings, func(e string) bool { return strings.Contains(e, tc.wantWarn) }) {
				t.Fatalf("warnings %v, want one containing %q", r.Warnings, tc.wantWarn)
			}
		})
	}
}

func TestCheckShared(t *testing.T) {
	a := CertInfo{Fingerprint: "A"}
	b := CertInfo{Fingerprint: "B"}
	tests := map[string]struct {
		reports    []*Report
		wantShared []string
		wantErrs   []string
	}{
		"one root": {
			reports:    []*Report{{Source: "cluster1", Roots: []CertInfo{a}, IssuingRoot: "A"}, {Source: "cluster2", Roots: []CertInfo{a}, IssuingRoot: "A"}},
			wantShared: []string{"A"},
		},
		"different roots": {
			reports:  []*Report{{Source: "cluster1", Roots: []CertInfo{a}, IssuingRoot: "A"}, {Source: "cluster2", Roots: []CertInfo{b}, IssuingRoot: "B"}},
			wantErrs: []string{"cluster1 does not trust the root cluster2 issues from", "cluster2 does not trust the root cluster1 issues from"},
		},
		"transition": {
			reports:    []*Report{{Source: "cluster1", Roots: []CertInfo{a, b}, IssuingRoot: "A"}, {Source: "cluster2", Roots: []CertInfo{a, b}, IssuingRoot: "B"}},
			wantShared: []string{"A", "B"},
		},
		"half way through a rotation": {
			reports:    []*Report{{Source: "cluster1", Roots: []CertInfo{a}, IssuingRoot: "A"}, {Source: "cluster2", Roots: []CertInfo{a, b}, IssuingRoot: "B"}},
			wantShared: []string{"A"},
			wantErrs:   []string{"cluster1 does not trust the root cluster2 issues from"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			shared, errs := CheckShared(tc.reports)
			if !slices.Equal(shared, tc.wantShared) {
				t.Errorf("shared = %v, want %v", shared, tc.wantShared)
			}
			if len(errs) != len(tc.wantErrs) {
				t.Fatalf("errors = %v, want %v", errs, tc.wantErrs)
			}
			for i, want := range tc.wantErrs {
				if !strings.HasPrefix(errs[i], want) {
					t.Errorf("error %d = %q, want prefix %q", i, errs[i], want)
				}
			}
		})
	}
}

func TestWriteFilesModesAndRefusal(t *testing.T) {
	root := roots(t)[KeyECDSA]
	dir := filepath.Join(t.TempDir(), "certs")
	if err := WriteFiles(dir, RootFiles(root), false); err != nil {
		t.Fatal(err)
	}
	modes := map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, RootKeyFile): 0o600, filepath.Join(dir, RootCertFile): 0o644}
	for p, want := range modes {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s mode %v, want %v", p, st.Mode(), want)
		}
	}
	other := roots(t)[KeyRSA]
	err := WriteFiles(dir, RootFiles(other), false)
	if err == nil || !strings.Contains(err.Error(), "already exists; pass --force") {
		t.Fatalf("second write: %v, want a refusal naming --force", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, RootKeyFile)); string(got) != string(root.KeyPEM) {
		t.Fatal("a refused write changed the key")
	}
	if err := WriteFiles(dir, RootFiles(other), true); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, RootKeyFile)); string(got) != string(other.KeyPEM) {
		t.Fatal("--force did not replace the key")
	}
	if st, _ := os.Stat(filepath.Join(dir, RootKeyFile)); st.Mode() != 0o600 {
		t.Errorf("overwritten key mode %v, want 0600", st.Mode())
	}
}

func TestLoadCAErrors(t *testing.T) {
	now := time.Now()
	root := roots(t)[KeyECDSA]
	other := roots(t)[KeyRSA]
	inter, err := NewIntermediate(root, IntermediateRequest{Cluster: "c", Validity: 24 * time.Hour, Key: KeySpec{Algorithm: KeyECDSA}}, now)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		cert, key []byte
		at        time.Time
		wantErr   string
		inKey     bool
	}{
		"good":                           {cert: root.CertPEM, key: root.KeyPEM, at: now},
		"cert not pem":                   {cert: []byte("hello"), key: root.KeyPEM, at: now, wantErr: "no PEM certificate found"},
		"key in cert file":               {cert: root.KeyPEM, key: root.KeyPEM, at: now, wantErr: "PEM block where a CERTIFICATE was expected"},
		"cert in key file":               {cert: root.CertPEM, key: root.CertPEM, at: now, wantErr: "holds a certificate where a private key was expected", inKey: true},
		"key not pem":                    {cert: root.CertPEM, key: []byte("x"), at: now, wantErr: "not a PEM file", inKey: true},
		"key does not match":             {cert: root.CertPEM, key: other.KeyPEM, at: now, wantErr: "the key does not match", inKey: true},
		"two certificates":               {cert: Concat(root.CertPEM, other.CertPEM), key: root.KeyPEM, at: now, wantErr: "holds 2 certificates"},
		"root expired":                   {cert: root.CertPEM, key: root.KeyPEM, at: now.Add(11 * 365 * 24 * time.Hour), wantErr: "expired on"},
		"intermediate expired as issuer": {cert: inter.CertPEM, key: inter.KeyPEM, at: now.Add(48 * time.Hour), wantErr: "expired on"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cp, kp := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
			if err := os.WriteFile(cp, tc.cert, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(kp, tc.key, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadCA(cp, kp, tc.at)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			file := cp
			if tc.inKey {
				file = kp
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), file+": ") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q, want one line starting with %s and containing %q", err, file, tc.wantErr)
			}
		})
	}
}

// signedBy makes a certificate with Go's x509 directly, for shapes the
// package itself refuses to issue (a leaf used as a CA, an intermediate
// outliving its root).
func signedBy(t *testing.T, issuer *CA, isCA bool, notAfter time.Time) *CA {
	t.Helper()
	key, keyPEM, err := newKey(KeySpec{Algorithm: KeyECDSA})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "made by hand"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: notAfter,
		IsCA: isCA, BasicConstraintsValid: true, MaxPathLenZero: isCA,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer.Cert, key.Public(), issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := newCA(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestHandMadeBadShapes(t *testing.T) {
	root := roots(t)[KeyECDSA]
	outliving := signedBy(t, root, true, root.Cert.NotAfter.Add(24*time.Hour))
	r := VerifyBundle("c", NewBundle(outliving, root.Cert, root.CertPEM), time.Now(), 0)
	if !slices.ContainsFunc(r.Warnings, func(e string) bool {
		return strings.HasPrefix(e, "ca-cert.pem: ") && strings.Contains(e, "outlives its root")
	}) {
		t.Errorf("an intermediate outliving its root gets no warning: %v", r.Warnings)
	}

	leaf := signedBy(t, root, false, time.Now().Add(time.Hour))
	dir := t.TempDir()
	cp, kp := filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "leaf-key.pem")
	if err := os.WriteFile(cp, leaf.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kp, leaf.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(cp, kp, time.Now()); err == nil || !strings.HasPrefix(err.Error(), cp+": ") || !strings.Contains(err.Error(), "is not a CA certificate") {
		t.Errorf("LoadCA of a leaf: %v, want a refusal naming %s", err, cp)
	}
	r = VerifyBundle("c", &Bundle{CACert: leaf.CertPEM, CAKey: leaf.KeyPEM, RootCert: root.CertPEM, CertChain: Concat(leaf.CertPEM, root.CertPEM)}, time.Now(), 0)
	if !slices.ContainsFunc(r.Errors, func(e string) bool { return strings.Contains(e, "is not a CA certificate") }) {
		t.Errorf("a leaf as ca-cert.pem passes: %v", r.Errors)
	}
}

func TestNotCARefusedAsIssuer(t *testing.T) {
	c := &x509.Certificate{IsCA: false, BasicConstraintsValid: true, NotAfter: time.Now().Add(time.Hour)}
	c.Subject.CommonName = "leaf"
	err := CheckIssuer(c, "root-cert.pem", time.Now())
	if err == nil || !strings.Contains(err.Error(), "is not a CA certificate") {
		t.Fatalf("error %v, want a refusal of a non-CA", err)
	}
}

func TestKeySpecValidate(t *testing.T) {
	tests := map[string]struct {
		spec    KeySpec
		wantErr string
	}{
		"rsa default": {KeySpec{Algorithm: KeyRSA}, ""},
		"ecdsa 384":   {KeySpec{Algorithm: KeyECDSA, Size: 384}, ""},
		"rsa 1024":    {KeySpec{Algorithm: KeyRSA, Size: 1024}, "--key-size 1024"},
		"ecdsa 521":   {KeySpec{Algorithm: KeyECDSA, Size: 521}, "--key-size 521"},
		"ed25519":     {KeySpec{Algorithm: "ed25519"}, `--key-algorithm "ed25519"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.spec.Validate()
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate(%+v) = %v, want %q", tc.spec, err, tc.wantErr)
			}
		})
	}
}
