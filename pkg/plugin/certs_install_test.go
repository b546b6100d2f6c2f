package plugin

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli/clitest"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// installInto runs `certs install --dir dir --contexts contexts… [--force]`
// against fake clusters.
func installInto(t *testing.T, clusters clitest.Clusters, dir string, force bool, contexts ...string) (string, error) {
	t.Helper()
	args := []string{dir, strings.Join(contexts, ",")}
	if force {
		args = append(args, "--force")
	}
	out, errOut, err := installer(t, clusters, args...)
	return out + errOut, err
}

// Issue 13, item 6: `certs install --force` keeps a 0600 backup of every
// cacerts it replaces (named in the output), drops the last-applied
// annotation that would keep the old key in the new object, and when a
// cluster fails says exactly which clusters were written.
func TestCertsInstallForceBacksUpAndReportsPartialWrites(t *testing.T) {
	oldDir, newDir := filepath.Join(t.TempDir(), "old"), filepath.Join(t.TempDir(), "new")
	for _, d := range []string{oldDir, newDir} {
		mustCerts(t, "root", "--dir", d, "--key-algorithm", "ecdsa")
		mustCerts(t, "intermediate", "c1", "c2", "--dir", d)
	}
	istioSystem := func() []runtime.Object {
		return []runtime.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rules.IstioSystemNamespace}}}
	}
	one, two := clitest.NewCluster("ctx1", istioSystem()...), clitest.NewCluster("ctx2", istioSystem()...)
	clusters := clitest.Clusters{one, two}
	if _, err := installInto(t, clusters, oldDir, false, "c1=ctx1", "c2=ctx2"); err != nil {
		t.Fatal(err)
	}
	// kubectl apply of the old Secret left its whole text, old key included,
	// in an annotation.
	old1, err := one.Kube.CoreV1().Secrets(rules.IstioSystemNamespace).Get(t.Context(), pki.SecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old1.Annotations = map[string]string{lastApplied: `{"data":{"ca-key.pem":"` + string(old1.Data[pki.CAKeyFile]) + `"}}`, "team": "mesh"}
	if old1, err = one.Kube.CoreV1().Secrets(rules.IstioSystemNamespace).Update(t.Context(), old1, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	two.KubeFake.PrependReactor("update", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("etcdserver: request timed out")
	})

	out, err := installInto(t, clusters, newDir, true, "c1=ctx1", "c2=ctx2")
	if err == nil {
		t.Fatalf("install with c2 failing succeeded:\n%s", out)
	}
	if !strings.Contains(err.Error(), "written: c1") || !strings.Contains(err.Error(), "not written: c2") {
		t.Errorf("the error does not say exactly which clusters were written: %v", err)
	}

	backups, _ := filepath.Glob(filepath.Join(newDir, "backups", "c1-cacerts-*.yaml"))
	if len(backups) != 1 {
		t.Fatalf("backups of c1's replaced cacerts: %v, want one\n%s", backups, out)
	}
	if !strings.Contains(out, backups[0]) {
		t.Errorf("the output does not name the backup %s:\n%s", backups[0], out)
	}
	st, err := os.Stat(backups[0])
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup %s: %v, want mode 0600", backups[0], err)
	}
	raw, err := os.ReadFile(backups[0])
	if err != nil {
		t.Fatal(err)
	}
	var saved corev1.Secret
	if err := yaml.Unmarshal(raw, &saved); err != nil {
		t.Fatal(err)
	}
	if string(saved.Data[pki.CAKeyFile]) != string(old1.Data[pki.CAKeyFile]) || saved.Name != pki.SecretName || saved.Namespace != rules.IstioSystemNamespace {
		t.Errorf("the backup is not the replaced Secret with its key:\n%s", raw)
	}

	new1, err := one.Kube.CoreV1().Secrets(rules.IstioSystemNamespace).Get(t.Context(), pki.SecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := new1.Annotations[lastApplied]; ok {
		t.Errorf("the new cacerts keeps %s with the old key", lastApplied)
	}
	if new1.Annotations["team"] != "mesh" {
		t.Errorf("other annotations were dropped: %v", new1.Annotations)
	}
	if string(new1.Data[pki.CAKeyFile]) == string(old1.Data[pki.CAKeyFile]) {
		t.Error("c1 was not written")
	}
}

// --dry-run and -o come from the kit: a client dry run asks no cluster, a
// server dry run sends every write marked dry, and -o prints the Secrets
// (with their key) while the messages go to stderr.
func TestCertsInstallDryRunAndOutput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	mustCerts(t, "root", "--dir", dir, "--key-algorithm", "ecdsa")
	mustCerts(t, "intermediate", "c1", "--dir", dir)
	istiod := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "istiod", Namespace: rules.IstioSystemNamespace}}
	tests := map[string]struct {
		flags      []string
		wantMsg    string
		wantOut    []string // in stdout
		wantWrites int      // requests that write, each marked dry unless none
	}{
		"client dry run asks nothing": {
			flags: []string{"--dry-run"}, wantMsg: "secret istio-system/cacerts would be created or updated (dry run)",
		},
		"server dry run": {
			flags: []string{"--dry-run=server", "--restart"}, wantMsg: "secret istio-system/cacerts created (server dry run)", wantWrites: 2,
		},
		"-o yaml prints the Secret with its key, messages on stderr": {
			flags: []string{"--dry-run=client", "-o", "yaml"}, wantMsg: "(dry run)",
			wantOut: []string{"kind: List", "kind: Secret", "name: cacerts", "ca-key.pem:"},
		},
		"-o name": {
			flags: []string{"-o", "name"}, wantMsg: "secret istio-system/cacerts created\n", wantOut: []string{"secret/cacerts\n"}, wantWrites: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			kube := clitest.NewCluster("ctx", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rules.IstioSystemNamespace}}, istiod)
			clusters := clitest.Clusters{kube}
			if name == "client dry run asks nothing" {
				clusters = nil // any request would fail: no cluster for ctx
			}
			out, errOut, err := installer(t, clusters, append([]string{dir, "c1=ctx"}, tc.flags...)...)
			if err != nil {
				t.Fatalf("install %v: %v\n%s%s", tc.flags, err, out, errOut)
			}
			msgs := out + errOut
			if len(tc.wantOut) > 0 {
				msgs = errOut
			}
			if !strings.Contains(msgs, tc.wantMsg) {
				t.Errorf("install %v: messages lack %q:\n%s", tc.flags, tc.wantMsg, msgs)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("install %v: stdout lacks %q:\n%s", tc.flags, w, out)
				}
			}
			if len(tc.wantOut) == 0 && strings.Contains(out, "PRIVATE KEY") {
				t.Errorf("install %v printed a private key without -o:\n%s", tc.flags, out)
			}
			writes := kube.Writes()
			if len(writes) != tc.wantWrites {
				t.Fatalf("install %v sent %d writes, want %d:\n%s", tc.flags, len(writes), tc.wantWrites, clitest.DescribeAll(writes))
			}
			dry := slices.Contains(tc.flags, "--dry-run=server")
			for _, a := range writes {
				if got := clitest.DryRunOf(a); slices.Equal(got, []string{metav1.DryRunAll}) != dry {
					t.Errorf("install %v: %s", tc.flags, clitest.Describe(a))
				}
			}
		})
	}
}
