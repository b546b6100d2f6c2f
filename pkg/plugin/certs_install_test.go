package plugin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// installInto runs `certs install --dir dir --contexts contexts… [--force]`
// against fake clusters.
func installInto(t *testing.T, clusters map[string]kubernetes.Interface, dir string, force bool, contexts ...string) (string, error) {
	t.Helper()
	streams, out, errOut := certsStreams()
	o := &CertsInstallOptions{IOStreams: streams, now: time.Now, DryRun: dryRunNone, Dir: dir, Contexts: contexts, Force: force}
	o.kubeFor = func(ctx string) (kubernetes.Interface, error) { return clusters[ctx], nil }
	if err := o.Complete(); err != nil {
		return "", err
	}
	if err := o.Validate(); err != nil {
		return "", err
	}
	err := o.Run(t.Context())
	return out.String() + errOut.String(), err
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
	one, two := fake.NewClientset(istioSystem()...), fake.NewClientset(istioSystem()...)
	clusters := map[string]kubernetes.Interface{"ctx1": one, "ctx2": two}
	if _, err := installInto(t, clusters, oldDir, false, "c1=ctx1", "c2=ctx2"); err != nil {
		t.Fatal(err)
	}
	// kubectl apply of the old Secret left its whole text, old key included,
	// in an annotation.
	old1, err := one.CoreV1().Secrets(rules.IstioSystemNamespace).Get(t.Context(), pki.SecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old1.Annotations = map[string]string{lastApplied: `{"data":{"ca-key.pem":"` + string(old1.Data[pki.CAKeyFile]) + `"}}`, "team": "mesh"}
	if old1, err = one.CoreV1().Secrets(rules.IstioSystemNamespace).Update(t.Context(), old1, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	two.PrependReactor("update", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
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

	new1, err := one.CoreV1().Secrets(rules.IstioSystemNamespace).Get(t.Context(), pki.SecretName, metav1.GetOptions{})
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
