package certs

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki/pkitest"
)

var ecdsa = pki.KeySpec{Algorithm: pki.KeyECDSA}

func rootRequest(dir string) RootRequest {
	return RootRequest{Dir: dir, Root: pki.RootRequest{CommonName: "Test Root CA", Org: pki.DefaultOrg, Validity: 10 * 365 * 24 * time.Hour, Key: ecdsa}}
}

// mustRoot writes a new ECDSA root to dir.
func mustRoot(t *testing.T, dir string) *RootResult {
	t.Helper()
	res, err := NewRoot(t.Context(), rootRequest(dir))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func intermediateRequest(t *testing.T, dir string, rotate bool, clusters ...string) IntermediateRequest {
	t.Helper()
	iss, err := LoadIssuer(dir, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return IntermediateRequest{Dir: dir, Clusters: clusters, Issuer: iss, Rotate: rotate, Org: pki.DefaultOrg, Validity: 2 * 365 * 24 * time.Hour, Key: ecdsa}
}

// mustIntermediates writes intermediates for clusters under the root of
// dir (rotate: replacing theirs).
func mustIntermediates(t *testing.T, dir string, rotate bool, clusters ...string) *IntermediateResult {
	t.Helper()
	res, err := Intermediates(t.Context(), intermediateRequest(t, dir, rotate, clusters...))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// mustVerifyDir checks dir as `certs verify --dir` does, and fails on any
// error.
func mustVerifyDir(t *testing.T, dir string) *VerifyResult {
	t.Helper()
	res := Verify(t.Context(), cli.Factory{}, VerifyRequest{Dir: dir, CheckDir: true, WarnWithin: 30 * 24 * time.Hour})
	if !res.OK {
		t.Fatalf("verify %s: %v", dir, res.Errors)
	}
	return res
}

// fakeFactory hands out the fake clients of clusters by context.
func fakeFactory(clusters map[string]kubernetes.Interface) cli.Factory {
	return cli.Factory{ClusterFor: func(ctx string) (*cli.Cluster, error) {
		kube, ok := clusters[ctx]
		if !ok {
			return nil, fmt.Errorf("no cluster for context %s", ctx)
		}
		return &cli.Cluster{Context: ctx, Kube: kube}, nil
	}}
}

func istioStyle(t *testing.T, cn string, parent *pkitest.CA) *pkitest.CA {
	t.Helper()
	ca, err := pkitest.IstioStyle(cn, parent, 2*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}
