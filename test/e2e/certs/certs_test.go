// Package certs checks `kubectl mesh certs` end to end: the real kubectl
// discovers the plugin, which writes Istio's cacerts Secret into the lab's
// real API servers and verifies it across clusters.
package certs

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki/pkitest"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

var theLab *lab.Lab

func TestMain(m *testing.M) {
	os.Exit(lab.RunTests(m, lab.Options{Clusters: []string{"cluster1", "cluster2"}}, func(_ context.Context, l *lab.Lab, _ string) (func(), error) {
		theLab = l
		return nil, nil
	}))
}

// mesh runs `kubectl mesh ARGS…` through kubectl's plugin discovery.
func mesh(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return theLab.Kubectl(t.Context(), nil, append([]string{"mesh"}, args...)...)
}

func mustMesh(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := mesh(t, args...)
	if err != nil {
		t.Fatalf("kubectl mesh %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

func restartedAt(t *testing.T, cluster, deployment string) string {
	t.Helper()
	d, err := theLab.Cluster(cluster).Kube.AppsV1().Deployments(rules.IstioSystemNamespace).Get(t.Context(), deployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"]
}

// TestCertsLifecycle walks the life of a mesh's trust on two clusters; each
// step builds on the state the previous one left.
func TestCertsLifecycle(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "mesh-certs")
	other := filepath.Join(t.TempDir(), "other-certs")
	secretOf := func(cluster string) (map[string][]byte, string, error) {
		s, err := theLab.Cluster(cluster).Kube.CoreV1().Secrets(rules.IstioSystemNamespace).Get(ctx, pki.SecretName, metav1.GetOptions{})
		if err != nil {
			return nil, "", err
		}
		return s.Data, s.ResourceVersion, nil
	}

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"root and intermediates", func(t *testing.T) {
			mustMesh(t, "certs", "root", "--dir", dir, "--key-algorithm", "ecdsa")
			mustMesh(t, "certs", "intermediate", "cluster1", "cluster2", "--dir", dir)
			st, err := os.Stat(filepath.Join(dir, "cluster2", pki.CAKeyFile))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("cluster2 ca-key.pem: %v mode %v, want 0600", err, st.Mode())
			}
		}},
		{"server dry run writes nothing", func(t *testing.T) {
			out := mustMesh(t, "certs", "install", "--dir", dir, "--contexts", "cluster1,cluster2", "--dry-run=server")
			if !strings.Contains(out, "(server dry run)") {
				t.Errorf("output does not say it is a dry run:\n%s", out)
			}
			for _, c := range []string{"cluster1", "cluster2"} {
				if _, _, err := secretOf(c); !apierrors.IsNotFound(err) {
					t.Errorf("%s: a server dry run left a cacerts Secret behind (err %v)", c, err)
				}
				if got := restartedAt(t, c, "istiod"); got != "" {
					t.Errorf("%s: dry run restarted istiod (%s)", c, got)
				}
			}
		}},
		{"install into both", func(t *testing.T) {
			out := mustMesh(t, "certs", "install", "--dir", dir, "--contexts", "cluster1,cluster2")
			for _, c := range []string{"cluster1", "cluster2"} {
				data, _, err := secretOf(c)
				if err != nil {
					t.Fatalf("%s: %v", c, err)
				}
				for _, f := range []string{pki.CACertFile, pki.CAKeyFile, pki.RootCertFile, pki.CertChainFile} {
					want, err := os.ReadFile(filepath.Join(dir, c, f))
					if err != nil {
						t.Fatal(err)
					}
					if string(data[f]) != string(want) {
						t.Errorf("%s: secret key %s differs from %s", c, f, filepath.Join(dir, c, f))
					}
				}
				if !strings.Contains(out, c+": istiod is installed but not running (0/1 replicas ready)") {
					t.Errorf("output does not report %s's istiod honestly:\n%s", c, out)
				}
			}
			if !strings.Contains(out, "rollout restart deployment/istiod") {
				t.Errorf("output does not say istiod must be restarted:\n%s", out)
			}
			if strings.Contains(out, "PRIVATE KEY") {
				t.Errorf("install printed a private key without -o:\n%s", out)
			}
		}},
		{"re-install is idempotent", func(t *testing.T) {
			_, before, err := secretOf("cluster1")
			if err != nil {
				t.Fatal(err)
			}
			out := mustMesh(t, "certs", "install", "--dir", dir, "--contexts", "cluster1,cluster2")
			_, after, err := secretOf("cluster1")
			if err != nil {
				t.Fatal(err)
			}
			if before != after || !strings.Contains(out, "cluster1: secret istio-system/cacerts unchanged") {
				t.Errorf("re-install rewrote the Secret (resourceVersion %s → %s):\n%s", before, after, out)
			}
		}},
		{"verify shows one shared root", func(t *testing.T) {
			root := pkitest.Fingerprints(t, filepath.Join(dir, pki.RootCertFile))[0]
			out := mustMesh(t, "certs", "verify", "--contexts", "cluster1,cluster2")
			if !strings.Contains(out, "all 2 clusters share one root: "+root) {
				t.Errorf("verify does not report the one shared root %s:\n%s", root, out)
			}
			js := mustMesh(t, "certs", "verify", "--contexts", "cluster1,cluster2", "-o", "json")
			var res struct {
				OK          bool     `json:"ok"`
				SharedRoots []string `json:"sharedRoots"`
				Clusters    []struct {
					Source      string `json:"source"`
					IssuingRoot string `json:"issuingRoot"`
				} `json:"clusters"`
			}
			if err := json.Unmarshal([]byte(js), &res); err != nil {
				t.Fatalf("verify -o json: %v\n%s", err, js)
			}
			if !res.OK || len(res.SharedRoots) != 1 || res.SharedRoots[0] != root || len(res.Clusters) != 2 || res.Clusters[1].IssuingRoot != root {
				t.Errorf("verify -o json = %+v, want ok with shared root %s", res, root)
			}
		}},
		{"a different root is refused with both fingerprints", func(t *testing.T) {
			mustMesh(t, "certs", "root", "--dir", other, "--key-algorithm", "ecdsa", "--common-name", "Other Root")
			mustMesh(t, "certs", "intermediate", "cluster2", "--dir", other)
			oldInter := pkitest.Fingerprints(t, filepath.Join(dir, "cluster2", pki.CACertFile))[0]
			newInter := pkitest.Fingerprints(t, filepath.Join(other, "cluster2", pki.CACertFile))[0]
			oldRoot := pkitest.Fingerprints(t, filepath.Join(dir, pki.RootCertFile))[0]
			newRoot := pkitest.Fingerprints(t, filepath.Join(other, pki.RootCertFile))[0]
			_, before, err := secretOf("cluster2")
			if err != nil {
				t.Fatal(err)
			}
			out, stderr, err := mesh(t, "certs", "install", "--dir", other, "--context", "cluster2")
			if err == nil {
				t.Fatalf("install of a different root succeeded:\n%s", out)
			}
			for _, fp := range []string{oldInter, newInter, oldRoot, newRoot} {
				if !strings.Contains(stderr, fp) {
					t.Errorf("refusal does not show fingerprint %s:\n%s", fp, stderr)
				}
			}
			if !strings.Contains(stderr, "--force") {
				t.Errorf("refusal does not mention --force:\n%s", stderr)
			}
			if _, after, _ := secretOf("cluster2"); after != before {
				t.Errorf("a refused install changed the Secret (resourceVersion %s → %s)", before, after)
			}
		}},
		{"--force replaces and --restart restarts istiod", func(t *testing.T) {
			out := mustMesh(t, "certs", "install", "--dir", other, "--context", "cluster2", "--force", "--restart")
			data, _, err := secretOf("cluster2")
			if err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(filepath.Join(other, "cluster2", pki.CACertFile))
			if string(data[pki.CACertFile]) != string(want) {
				t.Errorf("--force did not replace cluster2's intermediate")
			}
			if restartedAt(t, "cluster2", "istiod") == "" {
				t.Errorf("--restart did not set the restartedAt annotation on istiod:\n%s", out)
			}
			if got := restartedAt(t, "cluster2", "istio-ingressgateway"); got != "" {
				t.Errorf("gateways restarted without --restart-gateways (%s)", got)
			}
			if restartedAt(t, "cluster1", "istiod") != "" {
				t.Errorf("cluster1's istiod restarted though only cluster2 was installed")
			}
		}},
		{"verify detects the mismatch and names cluster2", func(t *testing.T) {
			out, _, err := mesh(t, "certs", "verify", "--contexts", "cluster1,cluster2")
			if err == nil {
				t.Fatalf("verify passed with two different roots:\n%s", out)
			}
			if !strings.Contains(out, "cluster1 does not trust the root cluster2 issues from") || !strings.Contains(out, "clusters share no root") {
				t.Errorf("verify does not name the mismatch:\n%s", out)
			}
		}},
		{"restart gateways and print the Secret", func(t *testing.T) {
			mustMesh(t, "certs", "install", "--dir", dir, "--context", "cluster2", "--force", "--restart", "--restart-gateways")
			for _, d := range []string{"istiod", "istio-ingressgateway", "istio-egressgateway"} {
				if restartedAt(t, "cluster2", d) == "" {
					t.Errorf("%s not restarted by --restart --restart-gateways", d)
				}
			}
			out := mustMesh(t, "certs", "verify", "--contexts", "cluster1,cluster2")
			if !strings.Contains(out, "share one root") {
				t.Errorf("after re-installing the shared root, verify does not pass:\n%s", out)
			}
			yml := mustMesh(t, "certs", "install", "--dir", dir, "--context", "cluster1", "--dry-run=client", "-o", "yaml")
			if !strings.Contains(yml, "kind: Secret") || !strings.Contains(yml, "ca-key.pem:") || !strings.Contains(yml, "name: cacerts") {
				t.Errorf("-o yaml does not print the Secret:\n%s", yml)
			}
		}},
		{"root rotation: verify understands the transition bundle", func(t *testing.T) {
			oldRoot := pkitest.Fingerprints(t, filepath.Join(dir, pki.RootCertFile))[0]
			mustMesh(t, "certs", "root", "--rotate", "--dir", dir, "--key-algorithm", "ecdsa")
			newRoot := pkitest.Fingerprints(t, filepath.Join(dir, pki.RootCertFile))[0]
			mustMesh(t, "certs", "install", "--dir", dir, "--contexts", "cluster1,cluster2", "--force")
			out := mustMesh(t, "certs", "verify", "--contexts", "cluster1,cluster2")
			if !strings.Contains(out, "trust 2 roots (root rotation in progress): "+oldRoot+", "+newRoot) {
				t.Errorf("step 1 of a root rotation: verify does not show both roots:\n%s", out)
			}
			// Half way: cluster1 issues from the new root, cluster2 still
			// from the old; both trust both, so the mesh still works.
			mustMesh(t, "certs", "rotate", "cluster1", "--dir", dir)
			mustMesh(t, "certs", "install", "--dir", dir, "--context", "cluster1", "--force")
			js := mustMesh(t, "certs", "verify", "--contexts", "cluster1,cluster2", "-o", "json")
			var res struct {
				OK       bool `json:"ok"`
				Clusters []struct {
					IssuingRoot string `json:"issuingRoot"`
				} `json:"clusters"`
			}
			if err := json.Unmarshal([]byte(js), &res); err != nil {
				t.Fatal(err)
			}
			if !res.OK || res.Clusters[0].IssuingRoot != newRoot || res.Clusters[1].IssuingRoot != oldRoot {
				t.Errorf("half way through a root rotation, verify -o json:\n%s", js)
			}
			list := mustMesh(t, "certs", "install", "--dir", dir, "--contexts", "cluster1,cluster2", "--dry-run=client", "-o", "json")
			var l struct {
				Kind  string `json:"kind"`
				Items []struct {
					Kind string `json:"kind"`
				} `json:"items"`
			}
			if err := json.Unmarshal([]byte(list), &l); err != nil || l.Kind != "List" || len(l.Items) != 2 || l.Items[1].Kind != "Secret" {
				t.Errorf("-o json for two clusters is not a List of two Secrets: %v\n%s", err, list)
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.Fatalf("step %q failed; later steps depend on it", s.name)
		}
	}
}
