package certs

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki/pkitest"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// installInto installs the files of dir into fake clusters, targets given
// as NAME=CTX, and returns the messages.
func installInto(t *testing.T, clusters map[string]kubernetes.Interface, dir string, req InstallRequest, targets ...string) (string, error) {
	t.Helper()
	req.Dir, req.Targets = dir, nil
	for _, nc := range targets {
		name, ctx, _ := strings.Cut(nc, "=")
		req.Targets = append(req.Targets, Target{Name: name, Context: ctx})
	}
	bundles, err := LoadBundles(dir, req.Targets, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req.Bundles = bundles
	var msgs bytes.Buffer
	req.Messages = &msgs
	_, err = Install(t.Context(), fakeFactory(clusters), req)
	return msgs.String(), err
}

func istioSystem() *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rules.IstioSystemNamespace}}
}

func cacerts(t *testing.T, kube kubernetes.Interface) *corev1.Secret {
	t.Helper()
	s, err := kube.CoreV1().Secrets(rules.IstioSystemNamespace).Get(t.Context(), pki.SecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writes are the requests to kube that change something.
func writes(kube *fake.Clientset) []clienttesting.Action {
	var out []clienttesting.Action
	for _, a := range kube.Actions() {
		if v := a.GetVerb(); v != "get" && v != "list" && v != "watch" {
			out = append(out, a)
		}
	}
	return out
}

func TestInstallOnFakes(t *testing.T) {
	dir, other := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, d := range []string{dir, other} {
		mustRoot(t, d)
		mustIntermediates(t, d, false, "c1")
	}
	bare := fake.NewClientset()
	istiod := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "istiod", Namespace: rules.IstioSystemNamespace}, Status: appsv1.DeploymentStatus{ReadyReplicas: 1}}
	withIstio := fake.NewClientset(istioSystem(), istiod)

	out, err := installInto(t, map[string]kubernetes.Interface{"ctx": bare}, dir, InstallRequest{}, "c1=ctx")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bare.CoreV1().Namespaces().Get(t.Context(), rules.IstioSystemNamespace, metav1.GetOptions{}); err != nil {
		t.Errorf("namespace not created: %v", err)
	}
	if s := cacerts(t, bare); s.Labels[rules.ManagedByLabel] != rules.ManagedByValue || len(s.Data) != 4 {
		t.Fatalf("secret %v", s)
	}
	if !strings.Contains(out, "namespace istio-system created") || !strings.Contains(out, "istiod is not installed") {
		t.Errorf("messages:\n%s", out)
	}

	clusters := map[string]kubernetes.Interface{"ctx": withIstio}
	if _, err := installInto(t, clusters, dir, InstallRequest{}, "c1=ctx"); err != nil {
		t.Fatal(err)
	}
	_, err = installInto(t, clusters, other, InstallRequest{}, "c1=ctx")
	oldFP := pkitest.Fingerprints(t, filepath.Join(dir, "c1", pki.CACertFile))[0]
	newFP := pkitest.Fingerprints(t, filepath.Join(other, "c1", pki.CACertFile))[0]
	if err == nil || !strings.Contains(err.Error(), oldFP) || !strings.Contains(err.Error(), newFP) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("install over a different CA: %v; want a refusal naming %s, %s and --force", err, oldFP, newFP)
	}
	out, err = installInto(t, clusters, other, InstallRequest{Force: true, Restart: true}, "c1=ctx")
	if err != nil {
		t.Fatal(err)
	}
	d, err := withIstio.AppsV1().Deployments(rules.IstioSystemNamespace).Get(t.Context(), "istiod", metav1.GetOptions{})
	if err != nil || d.Spec.Template.Annotations[restartedAtAnnotation] == "" {
		t.Fatalf("istiod not restarted: %v\n%s", err, out)
	}
	if !strings.Contains(out, "istiod is running (1/1 replicas ready)") || !strings.Contains(out, "replaced") {
		t.Errorf("messages:\n%s", out)
	}
}

// A refusal in one cluster leaves every cluster untouched, the ones before
// it too.
func TestInstallRefusesBeforeAnyWrite(t *testing.T) {
	dir, other := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, d := range []string{dir, other} {
		mustRoot(t, d)
		mustIntermediates(t, d, false, "c1", "c2")
	}
	one, two := fake.NewClientset(istioSystem()), fake.NewClientset(istioSystem())
	clusters := map[string]kubernetes.Interface{"ctx1": one, "ctx2": two}
	if _, err := installInto(t, map[string]kubernetes.Interface{"ctx2": two}, other, InstallRequest{}, "c2=ctx2"); err != nil {
		t.Fatal(err)
	}
	two.ClearActions()
	out, err := installInto(t, clusters, dir, InstallRequest{}, "c1=ctx1", "c2=ctx2")
	if err == nil || !strings.Contains(err.Error(), "c2 (context ctx2)") || !strings.Contains(err.Error(), "no cluster was written") {
		t.Fatalf("install with c2 holding another CA: %v, want a refusal naming c2 and saying nothing was written\n%s", err, out)
	}
	if w := append(writes(one), writes(two)...); len(w) != 0 {
		t.Errorf("a refused install wrote %v", w)
	}
	if backups, _ := filepath.Glob(filepath.Join(dir, "backups", "*")); len(backups) != 0 {
		t.Errorf("a refused install left backups %v", backups)
	}
}

// Issue 13, item 6: install with Force keeps a 0600 backup of every
// cacerts it replaces (named in the messages), drops the last-applied
// annotation that would keep the old key in the new object, and when a
// cluster fails says exactly which clusters were written.
func TestInstallForceBacksUpAndReportsPartialWrites(t *testing.T) {
	oldDir, newDir := filepath.Join(t.TempDir(), "old"), filepath.Join(t.TempDir(), "new")
	for _, d := range []string{oldDir, newDir} {
		mustRoot(t, d)
		mustIntermediates(t, d, false, "c1", "c2")
	}
	one, two := fake.NewClientset(istioSystem()), fake.NewClientset(istioSystem())
	clusters := map[string]kubernetes.Interface{"ctx1": one, "ctx2": two}
	if _, err := installInto(t, clusters, oldDir, InstallRequest{}, "c1=ctx1", "c2=ctx2"); err != nil {
		t.Fatal(err)
	}
	// kubectl apply of the old Secret left its whole text, old key included,
	// in an annotation.
	old1 := cacerts(t, one)
	old1.Annotations = map[string]string{lastAppliedAnnotation: `{"data":{"ca-key.pem":"` + string(old1.Data[pki.CAKeyFile]) + `"}}`, "team": "mesh"}
	old1, err := one.CoreV1().Secrets(rules.IstioSystemNamespace).Update(t.Context(), old1, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	two.PrependReactor("update", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("etcdserver: request timed out")
	})

	out, err := installInto(t, clusters, newDir, InstallRequest{Force: true}, "c1=ctx1", "c2=ctx2")
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
		t.Errorf("the messages do not name the backup %s:\n%s", backups[0], out)
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

	new1 := cacerts(t, one)
	if _, ok := new1.Annotations[lastAppliedAnnotation]; ok {
		t.Errorf("the new cacerts keeps %s with the old key", lastAppliedAnnotation)
	}
	if new1.Annotations["team"] != "mesh" {
		t.Errorf("other annotations were dropped: %v", new1.Annotations)
	}
	if string(new1.Data[pki.CAKeyFile]) == string(old1.Data[pki.CAKeyFile]) {
		t.Error("c1 was not written")
	}
}

// A bring-your-own bundle laid out as Istio's tools/certs makes it
// installs; a later bundle that only adds trust (the same intermediate,
// root-cert.pem with the installed root and a new one: step 1 of a root
// rotation) needs no Force; one with another intermediate still does.
func TestInstallBringYourOwnBundleAndAddedTrust(t *testing.T) {
	root, inter := pkitest.MustIstioSample(t)
	dir := pkitest.SampleDir(t, root, inter)
	kube := fake.NewClientset(istioSystem())
	clusters := map[string]kubernetes.Interface{"ctx": kube}
	if out, err := installInto(t, clusters, dir, InstallRequest{}, "cluster1=ctx"); err != nil {
		t.Fatalf("install of a tools/certs bundle: %v\n%s", err, out)
	}

	newRoot := istioStyle(t, "New Root CA", nil)
	wider := t.TempDir()
	pkitest.WriteFiles(t, filepath.Join(wider, "cluster1"), pkitest.SampleFiles(inter, pki.Concat(root.CertPEM, newRoot.CertPEM)))
	out, err := installInto(t, clusters, wider, InstallRequest{}, "cluster1=ctx")
	if err != nil {
		t.Fatalf("install of a bundle that only adds a root, without Force: %v\n%s", err, out)
	}
	if !strings.Contains(out, "updated: the same intermediate, trusting more roots") {
		t.Errorf("messages do not say the update only adds trust:\n%s", out)
	}
	if s := cacerts(t, kube); string(s.Data[pki.RootCertFile]) != string(pki.Concat(root.CertPEM, newRoot.CertPEM)) {
		t.Fatalf("root-cert.pem after the trust-adding install = %q", s.Data[pki.RootCertFile])
	}
	if backups, _ := filepath.Glob(filepath.Join(wider, "backups", "cluster1-cacerts-*.yaml")); len(backups) != 1 {
		t.Errorf("the replaced cacerts was not backed up: %v", backups)
	}

	otherInter := istioStyle(t, "Other Istio CA", root)
	other := pkitest.SampleDir(t, root, otherInter)
	if out, err := installInto(t, clusters, other, InstallRequest{}, "cluster1=ctx"); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("install of another intermediate without Force: %v\n%s", err, out)
	}
}

// A client dry run asks no cluster; a server dry run sends every write
// marked dry, backs nothing up, and says so in every message.
func TestInstallDryRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	mustRoot(t, dir)
	mustIntermediates(t, dir, false, "c1")
	out, err := installInto(t, nil, dir, InstallRequest{DryRun: cli.DryRunClient}, "c1=ctx")
	if err != nil || !strings.Contains(out, "secret istio-system/cacerts would be created or updated (dry run)") {
		t.Fatalf("client dry run: %v\n%s", err, out)
	}
	kube := fake.NewClientset()
	out, err = installInto(t, map[string]kubernetes.Interface{"ctx": kube}, dir, InstallRequest{DryRun: cli.DryRunServer}, "c1=ctx")
	if err != nil || !strings.Contains(out, "namespace istio-system created (server dry run)") || !strings.Contains(out, "would be created (server dry run)") {
		t.Fatalf("server dry run into a cluster without istio-system: %v\n%s", err, out)
	}
	w := writes(kube)
	if len(w) != 1 || w[0].GetResource().Resource != "namespaces" {
		t.Fatalf("server dry run without istio-system sent %v, want only the namespace's create", w)
	}
	if o := w[0].(clienttesting.CreateActionImpl).GetCreateOptions(); len(o.DryRun) != 1 || o.DryRun[0] != metav1.DryRunAll {
		t.Errorf("namespace create sent with dryRun %v", o.DryRun)
	}
}

func TestRestartPatchAndGateways(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b, err := restartPatch(now)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Spec struct {
			Template struct {
				Metadata struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"metadata"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(b, &p); err != nil || p.Spec.Template.Metadata.Annotations[restartedAtAnnotation] != "2026-01-02T03:04:05Z" {
		t.Fatalf("restart patch %s: %v", b, err)
	}
	tests := map[string]struct {
		labels map[string]string
		want   bool
	}{
		"istio label":   {map[string]string{"istio": "ingressgateway"}, true},
		"app label":     {map[string]string{"app": "istio-egressgateway"}, true},
		"istiod":        {map[string]string{"app": "istiod", "istio": "pilot"}, false},
		"other gateway": {map[string]string{"app": "my-gateway"}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := isGateway(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Labels: tc.labels}}); got != tc.want {
				t.Fatalf("isGateway(%v) = %v", tc.labels, got)
			}
		})
	}
}

// With RestartGateways, istiod and Istio's gateways are restarted, and no
// other Deployment.
func TestInstallRestartsGateways(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	mustRoot(t, dir)
	mustIntermediates(t, dir, false, "c1")
	deploy := func(name string, labels map[string]string) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: rules.IstioSystemNamespace, Labels: labels}}
	}
	kube := fake.NewClientset(istioSystem(), deploy("istiod", nil), deploy("istio-ingressgateway", map[string]string{"istio": "ingressgateway"}), deploy("my-app", map[string]string{"app": "my-app"}))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	out, err := installInto(t, map[string]kubernetes.Interface{"ctx": kube}, dir, InstallRequest{Restart: true, RestartGateways: true, Now: func() time.Time { return at }}, "c1=ctx")
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	for name, want := range map[string]string{"istiod": "2026-01-02T03:04:05Z", "istio-ingressgateway": "2026-01-02T03:04:05Z", "my-app": ""} {
		d, err := kube.AppsV1().Deployments(rules.IstioSystemNamespace).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil || d.Spec.Template.Annotations[restartedAtAnnotation] != want {
			t.Errorf("deployment %s restarted at %q (%v), want %q\n%s", name, d.Spec.Template.Annotations[restartedAtAnnotation], err, want, out)
		}
	}
	if !strings.Contains(out, "istiod is installed but not running (0/1 replicas ready)") {
		t.Errorf("messages do not say istiod does not run:\n%s", out)
	}
}

func TestDeploymentState(t *testing.T) {
	tests := map[string]struct {
		replicas *int32
		ready    int32
		want     string
	}{
		"default replicas, none ready": {nil, 0, "is installed but not running (0/1 replicas ready)"},
		"scaled to 3, 2 ready":         {ptr.To[int32](3), 2, "is running (2/3 replicas ready)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: tc.replicas}, Status: appsv1.DeploymentStatus{ReadyReplicas: tc.ready}}
			if got := deploymentState(d); got != tc.want {
				t.Errorf("deploymentState(%v replicas, %d ready) = %q, want %q", tc.replicas, tc.ready, got, tc.want)
			}
		})
	}
}
