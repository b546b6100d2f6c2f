package clitest_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli/clitest"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

var cmGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

const gatewayDoc = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: cross-network-gateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
`

func object(gvr schema.GroupVersionResource, kind, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvr.GroupVersion().WithKind(kind))
	u.SetNamespace("ns")
	u.SetName(name)
	return u
}

// A write marked dryRun=All is answered and not stored, through either
// client and for either store; the same write without it is stored. The
// client-go fakes store both.
func TestDryRunIsAnsweredNotStored(t *testing.T) {
	tests := map[string]func(c *clitest.Cluster, dryRun []string) error{
		"typed ConfigMap": func(c *clitest.Cluster, dryRun []string) error {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns"}}
			_, err := c.Kube.CoreV1().ConfigMaps("ns").Create(t.Context(), cm, metav1.CreateOptions{DryRun: dryRun})
			return err
		},
		"dynamic ConfigMap": func(c *clitest.Cluster, dryRun []string) error {
			_, err := c.Dynamic.Resource(cmGVR).Namespace("ns").Create(t.Context(), object(cmGVR, "ConfigMap", "x"), metav1.CreateOptions{DryRun: dryRun})
			return err
		},
		"dynamic ServiceEntry": func(c *clitest.Cluster, dryRun []string) error {
			se := object(rules.ServiceEntryGVR, rules.KindServiceEntry, "x")
			_, err := c.Dynamic.Resource(rules.ServiceEntryGVR).Namespace("ns").Create(t.Context(), se, metav1.CreateOptions{DryRun: dryRun})
			return err
		},
		"dynamic apply": func(c *clitest.Cluster, dryRun []string) error {
			se := object(rules.ServiceEntryGVR, rules.KindServiceEntry, "x")
			_, err := c.Dynamic.Resource(rules.ServiceEntryGVR).Namespace("ns").Apply(t.Context(), "x", se, metav1.ApplyOptions{DryRun: dryRun, FieldManager: rules.FieldManager})
			return err
		},
	}
	for name, create := range tests {
		t.Run(name, func(t *testing.T) {
			gvr := cmGVR
			if strings.Contains(name, "ServiceEntry") || strings.Contains(name, "apply") {
				gvr = rules.ServiceEntryGVR
			}
			c := clitest.NewCluster("c1")
			if err := create(c, []string{metav1.DryRunAll}); err != nil {
				t.Fatalf("dry-run create: %v", err)
			}
			if _, err := c.Stored(gvr, "ns", "x"); !apierrors.IsNotFound(err) {
				t.Fatalf("after a dry-run create: %v, want not found", err)
			}
			if w := c.Writes(); len(w) != 1 || !slices.Equal(clitest.DryRunOf(w[0]), []string{metav1.DryRunAll}) {
				t.Errorf("writes = %s, want the one dry run", clitest.DescribeAll(w))
			}
			if err := create(c, nil); err != nil {
				t.Fatalf("create: %v", err)
			}
			if _, err := c.Stored(gvr, "ns", "x"); err != nil {
				t.Fatalf("after a create: %v, want it stored", err)
			}
		})
	}
}

// A dry run meets the errors the write would: create of what exists,
// delete of what does not.
func TestDryRunMeetsErrors(t *testing.T) {
	c := clitest.NewCluster("c1", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns"}})
	dry := []string{metav1.DryRunAll}
	_, err := c.Dynamic.Resource(cmGVR).Namespace("ns").Create(t.Context(), object(cmGVR, "ConfigMap", "x"), metav1.CreateOptions{DryRun: dry})
	if !apierrors.IsAlreadyExists(err) {
		t.Errorf("dry-run create of an existing ConfigMap: %v, want already exists", err)
	}
	err = c.Kube.CoreV1().ConfigMaps("ns").Delete(t.Context(), "y", metav1.DeleteOptions{DryRun: dry})
	if !apierrors.IsNotFound(err) {
		t.Errorf("dry-run delete of a missing ConfigMap: %v, want not found", err)
	}
	if err := c.Kube.CoreV1().ConfigMaps("ns").Delete(t.Context(), "x", metav1.DeleteOptions{DryRun: dry}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stored(cmGVR, "ns", "x"); err != nil {
		t.Errorf("a dry-run delete removed the ConfigMap: %v", err)
	}
}

// Kubernetes' own kinds are one store for both clients, as on one API
// server: what the typed client creates the dynamic client gets and
// lists, and the other way round.
func TestKubernetesKindsShareOneStore(t *testing.T) {
	c := clitest.NewCluster("c1")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "typed", Namespace: "ns"}, Data: map[string]string{"k": "v"}}
	if _, err := c.Kube.CoreV1().ConfigMaps("ns").Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	u, err := c.Dynamic.Resource(cmGVR).Namespace("ns").Get(t.Context(), "typed", metav1.GetOptions{})
	if err != nil || u.GetKind() != "ConfigMap" || u.Object["data"].(map[string]any)["k"] != "v" {
		t.Fatalf("dynamic get of a typed create = %v, %v", u, err)
	}
	applied := object(cmGVR, "ConfigMap", "applied")
	if _, err := c.Dynamic.Resource(cmGVR).Namespace("ns").Apply(t.Context(), "applied", applied, metav1.ApplyOptions{FieldManager: rules.FieldManager}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Kube.CoreV1().ConfigMaps("ns").Get(t.Context(), "applied", metav1.GetOptions{}); err != nil {
		t.Fatalf("typed get of a dynamic apply: %v", err)
	}
	list, err := c.Dynamic.Resource(cmGVR).Namespace("ns").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range list.Items {
		names = append(names, i.GetName())
	}
	if slices.Sort(names); !slices.Equal(names, []string{"applied", "typed"}) {
		t.Errorf("dynamic list = %v, want both", names)
	}
	if err := c.Dynamic.Resource(cmGVR).Namespace("ns").Delete(t.Context(), "typed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Kube.CoreV1().ConfigMaps("ns").Get(t.Context(), "typed", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("typed get after a dynamic delete: %v, want not found", err)
	}
}

// An apply creates, then replaces the whole object under the same UID,
// each time with a new resourceVersion.
func TestApplyCreatesOrReplaces(t *testing.T) {
	c := clitest.NewCluster("c1").Load(t, gatewayDoc)
	gw := c.Dynamic.Resource(rules.GatewayGVR).Namespace(rules.IstioSystemNamespace)
	first, err := gw.Get(t.Context(), "cross-network-gateway", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("a loaded Gateway: %v", err)
	}
	first.SetUID("u1")
	if _, err := gw.Update(t.Context(), first, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	desired := object(rules.GatewayGVR, rules.KindGateway, "cross-network-gateway")
	desired.SetNamespace(rules.IstioSystemNamespace)
	desired.Object["spec"] = map[string]any{"servers": []any{}}
	var versions []string
	for range 2 {
		got, err := gw.Apply(t.Context(), "cross-network-gateway", desired, metav1.ApplyOptions{FieldManager: rules.FieldManager, Force: true})
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, got.GetResourceVersion())
	}
	stored, err := c.Stored(rules.GatewayGVR, rules.IstioSystemNamespace, "cross-network-gateway")
	if err != nil {
		t.Fatal(err)
	}
	if _, has := stored.Object["spec"].(map[string]any)["selector"]; has || stored.GetUID() != "u1" {
		t.Errorf("after the apply: %v, want the spec replaced and the UID kept", stored.Object)
	}
	if versions[0] == "" || versions[0] == versions[1] || stored.GetResourceVersion() != versions[1] {
		t.Errorf("resourceVersions %v, stored %s: want a new one per apply", versions, stored.GetResourceVersion())
	}
}

// Writes are the requests that change something, Reset forgets them, and
// Describe says what each was.
func TestWritesAndDescribe(t *testing.T) {
	c := clitest.NewCluster("c1")
	if _, err := c.Kube.CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bar"}}
	if _, err := c.Kube.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	w := c.Writes()
	if len(c.Actions()) != 2 || len(w) != 1 {
		t.Fatalf("actions %s, writes %s; want a list and a create", clitest.DescribeAll(c.Actions()), clitest.DescribeAll(w))
	}
	if got, want := clitest.Describe(w[0]), "create namespaces /bar dryRun=[All]"; got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
	c.Reset()
	if a := c.Actions(); len(a) != 0 {
		t.Errorf("after Reset: %s", clitest.DescribeAll(a))
	}
}

// The factory hands out the clusters by context, the first as the
// kubeconfig's current context; other contexts are not in the kubeconfig.
func TestFactory(t *testing.T) {
	cs := clitest.Clusters{clitest.NewCluster("c1"), clitest.NewCluster("c2")}
	f := cs.Factory(t)
	for context, want := range map[string]*clitest.Cluster{"": cs[0], "c2": cs[1]} {
		if c, err := f.Cluster(context); err != nil || c != want.Cluster {
			t.Errorf("Cluster(%q) = %v, %v; want %s", context, c, err, want.Context)
		}
	}
	if _, err := f.Cluster("c9"); err == nil || !strings.Contains(err.Error(), `context "c9" is not in the kubeconfig`) {
		t.Errorf("Cluster(c9) = %v, want not in the kubeconfig", err)
	}
	if got, err := f.Contexts(); err != nil || !slices.Equal(got, []string{"c1", "c2"}) {
		t.Errorf("Contexts() = %v, %v", got, err)
	}
	cfg, err := f.RESTConfig("c2")
	if err != nil || cfg.Host != cs[1].Config.Host {
		t.Errorf("RESTConfig(c2) = %v, %v; want the fake's server %s", cfg, err, cs[1].Config.Host)
	}
}

// recorder is a testing.TB that keeps the failures CheckDryRun reports.
type recorder struct {
	testing.TB
	failures []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

// CheckDryRun fails a client dry run that sent anything, a run that sent
// nothing, and any write marked otherwise than its strategy says.
func TestCheckDryRun(t *testing.T) {
	create := func(dryRun ...string) k8stesting.Action {
		return k8stesting.NewCreateActionWithOptions(cmGVR, "ns", object(cmGVR, "ConfigMap", "x"), metav1.CreateOptions{DryRun: dryRun})
	}
	tests := map[string]struct {
		dry    cli.DryRun
		writes []k8stesting.Action
		want   string // in the failure; "" for none
	}{
		"client, nothing sent": {dry: cli.DryRunClient},
		"client, a write sent": {dry: cli.DryRunClient, writes: []k8stesting.Action{create(metav1.DryRunAll)}, want: "--dry-run=client sent writes"},
		"server, all marked":   {dry: cli.DryRunServer, writes: []k8stesting.Action{create(metav1.DryRunAll)}},
		"server, one unmarked": {dry: cli.DryRunServer, writes: []k8stesting.Action{create(metav1.DryRunAll), create()}, want: "--dry-run=server sent create configmaps ns/x"},
		"server, nothing sent": {dry: cli.DryRunServer, want: "--dry-run=server sent no write"},
		"none, unmarked":       {dry: cli.DryRunNone, writes: []k8stesting.Action{create()}},
		"none, a dry write":    {dry: cli.DryRunNone, writes: []k8stesting.Action{create(metav1.DryRunAll)}, want: "dryRun=[All]"},
		"none, nothing sent":   {dry: cli.DryRunNone, want: "--dry-run=none sent no write"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := &recorder{TB: t}
			clitest.CheckDryRun(r, tc.dry, tc.writes)
			got := strings.Join(r.failures, "\n")
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("CheckDryRun failed with %q, want %q", got, tc.want)
			}
		})
	}
}
