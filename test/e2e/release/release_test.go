// Package release checks what a release ships, end to end on the lab:
// shell completion through the real kubectl's plugin completion
// (kubectl_complete-mesh), and the webhook's kustomize overlays, rendered
// for a version, accepted by a real API server.
package release

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

var theLab *lab.Lab

func TestMain(m *testing.M) {
	os.Exit(lab.RunTests(m, lab.Options{Clusters: []string{"cluster1", "cluster2"}}, func(_ context.Context, l *lab.Lab, binDir string) (func(), error) {
		theLab = l
		// The completion helper as shipped in every archive, next to the
		// plugin, as after an install.
		root, err := lab.RepoRoot()
		if err != nil {
			return nil, err
		}
		script, err := os.ReadFile(filepath.Join(root, "kubectl_complete-mesh"))
		if err != nil {
			return nil, err
		}
		return nil, os.WriteFile(filepath.Join(binDir, "kubectl_complete-mesh"), script, 0o755)
	}))
}

// complete asks the real kubectl for completions of `kubectl mesh …`;
// kubectl hands them to kubectl_complete-mesh from PATH.
func complete(t *testing.T, args ...string) []string {
	t.Helper()
	out, stderr, err := theLab.Kubectl(t.Context(), nil, append([]string{"__complete", "mesh"}, args...)...)
	if err != nil {
		t.Fatalf("kubectl __complete mesh %q: %v\n%s", args, err, stderr)
	}
	var got []string
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, ":") {
			break
		}
		name, _, _ := strings.Cut(line, "\t") // drop descriptions
		got = append(got, name)
	}
	return got
}

func TestCompletionThroughKubectl(t *testing.T) {
	// A namespace per cluster tells which cluster -n completion asked.
	for _, c := range []string{"cluster1", "cluster2"} {
		if _, stderr, err := theLab.Kubectl(t.Context(), nil, "--context", c, "create", "namespace", "only-"+c); err != nil {
			t.Fatalf("create namespace: %v: %s", err, stderr)
		}
	}
	tests := map[string]struct {
		args    []string
		want    []string // each must be offered
		exclude []string // none may be offered
	}{
		"export args are Services of --from's namespace": {
			args: []string{"export", "--from", "cluster2", "-n", "bar", ""}, want: []string{"httpbin"},
		},
		"export args in another cluster": {
			args: []string{"export", "--from", "cluster1", "-n", "foo", ""}, want: []string{"sleep"}, exclude: []string{"httpbin"},
		},
		"export args by prefix, already given ones left out": {
			args: []string{"export", "--from", "cluster2", "-n", "hello", "helloworld", ""}, exclude: []string{"helloworld"},
		},
		"-n lists the namespaces of --from": {
			args: []string{"export", "--from", "cluster2", "-n", ""}, want: []string{"bar", "istio-system", "only-cluster2"}, exclude: []string{"only-cluster1"},
		},
		"-n lists the namespaces of --context": {
			args: []string{"status", "--context", "cluster1", "-n", "only"}, want: []string{"only-cluster1"}, exclude: []string{"only-cluster2", "istio-system"},
		},
		"--to completes contexts": {
			args: []string{"export", "httpbin", "--to", ""}, want: []string{"cluster1", "cluster2"},
		},
		"--to completes the next list item": {
			args: []string{"export", "httpbin", "--to", "cluster2,"}, want: []string{"cluster2,cluster1"}, exclude: []string{"cluster2,cluster2"},
		},
		"--from on link": {
			args: []string{"link", "--from", "cluster"}, want: []string{"cluster1", "cluster2"},
		},
		"--contexts on status": {
			args: []string{"status", "--contexts", ""}, want: []string{"cluster1", "cluster2"},
		},
		"subcommands": {
			args: []string{""}, want: []string{"certs", "export", "link", "status", "unexport", "unlink", "version"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := complete(t, tc.args...)
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("kubectl __complete mesh %q = %q, lacks %q", tc.args, got, w)
				}
			}
			for _, x := range tc.exclude {
				if slices.Contains(got, x) {
					t.Errorf("kubectl __complete mesh %q = %q, must not offer %q", tc.args, got, x)
				}
			}
		})
	}
}

// certManagerCRDs installs cert-manager's CRDs from its Go module (the lab
// has no cert-manager), so the cert-manager overlay's Issuers and
// Certificates can be checked by the API server too.
func certManagerCRDs(t *testing.T, context string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "mod", "download", "-json", certManagerModule)
	cmd.Dir = t.TempDir() // outside the product module: not one of its dependencies
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v: %s", certManagerModule, err, stderr.String())
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatal(err)
	}
	for _, crd := range []string{"issuers", "clusterissuers", "certificates", "certificaterequests"} {
		file := filepath.Join(mod.Dir, "deploy", "crds", "cert-manager.io_"+crd+".yaml")
		if _, stderr, err := theLab.Kubectl(t.Context(), nil, "--context", context, "apply", "--server-side", "-f", file); err != nil {
			t.Fatalf("install %s: %v: %s", file, err, stderr)
		}
	}
	if _, stderr, err := theLab.Kubectl(t.Context(), nil, "--context", context, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/issuers.cert-manager.io", "crd/certificates.cert-manager.io"); err != nil {
		t.Fatalf("cert-manager CRDs not established: %v: %s", err, stderr)
	}
}

const certManagerModule = "github.com/cert-manager/cert-manager@v1.21.2"

func TestDeployOverlaysDryRunServer(t *testing.T) {
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	overlays, err := filepath.Glob(filepath.Join(root, "deploy", "webhook", "overlays", "*"))
	if err != nil || len(overlays) < 2 {
		t.Fatalf("want the cert-manager and self-managed overlays under deploy/webhook/overlays, found %v (%v)", overlays, err)
	}
	const ctx = "cluster1"
	certManagerCRDs(t, ctx)
	// A server-side dry run creates nothing, so the namespaced objects
	// would find no namespace; create it first (the Namespace object in
	// the manifests is still dry-run applied).
	if _, stderr, err := theLab.Kubectl(t.Context(), nil, "--context", ctx, "create", "namespace", "mesh-system"); err != nil {
		t.Fatalf("create namespace: %v: %s", err, stderr)
	}
	dist := t.TempDir()
	kubectl, err := lab.Binary("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "go", "run", "./hack/release", "deploy", "-version", "v0.1.0", "-dist", dist, "-kubectl", kubectl)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release deploy: %v: %s", err, out)
	}
	for _, overlay := range overlays {
		name := filepath.Base(overlay)
		t.Run(name, func(t *testing.T) {
			// As users apply it: kubectl apply -k <overlay>.
			out, stderr, err := theLab.Kubectl(t.Context(), nil, "--context", ctx, "apply", "-k", overlay, "--dry-run=server")
			if err != nil {
				t.Fatalf("kubectl apply -k %s --dry-run=server: %v\n%s%s", overlay, err, out, stderr)
			}
			for _, want := range []string{"deployment.apps/mesh-webhook", "mutatingwebhookconfiguration", "validatingwebhookconfiguration"} {
				if !strings.Contains(out, want) {
					t.Errorf("dry run did not apply %s:\n%s", want, out)
				}
			}
			if name == "cert-manager" && !strings.Contains(out, "certificate.cert-manager.io/") {
				t.Errorf("dry run of the cert-manager overlay did not apply its Certificate:\n%s", out)
			}
			// And the copy rendered for a release, with its image.
			rendered := filepath.Join(dist, "deploy", "mesh-webhook-"+name+".yaml")
			b, err := os.ReadFile(rendered)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte("image: ghcr.io/kubectl-mesh/mesh-webhook:v0.1.0\n")) {
				t.Fatalf("%s does not reference the v0.1.0 image", rendered)
			}
			if out, stderr, err := theLab.Kubectl(t.Context(), nil, "--context", ctx, "apply", "-f", rendered, "--dry-run=server"); err != nil {
				t.Fatalf("kubectl apply -f %s --dry-run=server: %v\n%s%s", rendered, err, out, stderr)
			}
		})
	}
	// Nothing but the namespace was created.
	if out, _, err := theLab.Kubectl(t.Context(), nil, "--context", ctx, "get", "deployments,mutatingwebhookconfigurations", "-A", "-l", "app.kubernetes.io/part-of=kubectl-mesh", "-o", "name"); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("a dry run left objects behind: %v %s", err, out)
	}
}
