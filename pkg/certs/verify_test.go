package certs

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki/pkitest"
)

// Clusters that share a root verify; one without cacerts, or that cannot
// be reached, is an error in its own report and in the result.
func TestVerifyClusters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	mustRoot(t, dir)
	mustIntermediates(t, dir, false, "c1", "c2")
	one, two := fake.NewClientset(istioSystem()), fake.NewClientset(istioSystem())
	clusters := map[string]kubernetes.Interface{"ctx1": one, "ctx2": two, "empty": fake.NewClientset()}
	if _, err := installInto(t, clusters, dir, InstallRequest{}, "c1=ctx1", "c2=ctx2"); err != nil {
		t.Fatal(err)
	}
	root := pkitest.Fingerprints(t, filepath.Join(dir, pki.RootCertFile))[0]
	f := fakeFactory(clusters)
	res := Verify(t.Context(), f, VerifyRequest{Targets: []Target{{Name: "c1", Context: "ctx1"}, {Name: "c2", Context: "ctx2"}}, WarnWithin: time.Hour})
	if !res.OK || len(res.Clusters) != 2 || len(res.SharedRoots) != 1 || res.SharedRoots[0] != root || res.Files != nil {
		t.Fatalf("Verify of two clusters sharing root %s = %+v", root, res)
	}

	res = Verify(t.Context(), f, VerifyRequest{Targets: []Target{{Name: "c1", Context: "ctx1"}, {Name: "c3", Context: "empty"}, {Name: "c9", Context: "unknown"}}, WarnWithin: time.Hour})
	if res.OK || len(res.Clusters) != 3 {
		t.Fatalf("Verify with a cluster without cacerts and an unknown context = %+v, want it failing with three reports", res)
	}
	for i, want := range map[int]string{1: "c3: ", 2: "c9: no cluster for context unknown"} {
		if res.Clusters[i].OK() || !strings.Contains(strings.Join(res.Errors, "\n"), want) {
			t.Errorf("report %d %+v; errors %v, want one starting %q", i, res.Clusters[i], res.Errors, want)
		}
	}
}

// A directory with an intermediate from a replaced root works (a
// warning), but intermediates of two roots do not trust each other.
func TestVerifyDirWithReplacedRoot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "stale")
	mustRoot(t, dir)
	mustIntermediates(t, dir, false, "cluster1")
	force := rootRequest(dir)
	force.Force = true
	if _, err := NewRoot(t.Context(), force); err != nil {
		t.Fatal(err)
	}
	res := mustVerifyDir(t, dir)
	if len(res.Files) != 1 || !strings.Contains(strings.Join(res.Warnings, "\n"), "does not hold the root of") {
		t.Fatalf("Verify of an intermediate from a replaced root = %+v, want a warning", res)
	}
	mustIntermediates(t, dir, false, "cluster2")
	res = Verify(t.Context(), fakeFactory(nil), VerifyRequest{Dir: dir, CheckDir: true})
	if res.OK || !strings.Contains(strings.Join(res.Errors, "\n"), "does not trust the root") {
		t.Fatalf("Verify of intermediates of two roots = %+v, want an error", res)
	}
	if res := Verify(t.Context(), fakeFactory(nil), VerifyRequest{Dir: t.TempDir(), CheckDir: true}); res.OK || !strings.Contains(strings.Join(res.Errors, "\n"), "holds no cluster directories") {
		t.Errorf("Verify of an empty directory = %+v", res)
	}
}
