package export

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/gateway"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

// fakes are a source cluster (cluster2) with Service bar/httpbin of one
// version, and a target cluster (cluster1) without namespace bar and with
// VIPClaims served.
type fakes struct {
	srcKube, dstKube *kubefake.Clientset
	srcDyn, dstDyn   *dynamicfake.FakeDynamicClient
}

func newFakes() *fakes {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "httpbin", Namespace: "bar"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "httpbin"}, Ports: []corev1.ServicePort{{Name: "http", Port: 8000}}},
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "httpbin-v1", Namespace: "bar", Labels: map[string]string{"app": "httpbin", "version": "v1"}}}
	return &fakes{
		srcKube: kubefake.NewClientset(svc, pod),
		dstKube: kubefake.NewClientset(),
		srcDyn:  dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds),
		dstDyn:  dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds),
	}
}

// factory hands out the fakes as cluster2 (source) and cluster1 (target).
func (f *fakes) factory() cli.Factory {
	return cli.Factory{ClusterFor: func(context string) (*cli.Cluster, error) {
		switch context {
		case "cluster2":
			return &cli.Cluster{Context: context, Kube: f.srcKube, Dynamic: f.srcDyn}, nil
		case "cluster1":
			return &cli.Cluster{Context: context, Kube: f.dstKube, Dynamic: f.dstDyn}, nil
		}
		return nil, fmt.Errorf("context %q is not in the kubeconfig", context)
	}}
}

// writes are the requests of every fake that change something.
func (f *fakes) writes() []clienttesting.Action {
	var out []clienttesting.Action
	for _, actions := range [][]clienttesting.Action{f.srcKube.Actions(), f.srcDyn.Actions(), f.dstKube.Actions(), f.dstDyn.Actions()} {
		for _, a := range actions {
			if v := a.GetVerb(); v != "get" && v != "list" && v != "watch" {
				out = append(out, a)
			}
		}
	}
	return out
}

// reset forgets the requests made so far.
func (f *fakes) reset() {
	f.srcKube.ClearActions()
	f.dstKube.ClearActions()
	f.srcDyn.ClearActions()
	f.dstDyn.ClearActions()
}

func exportRequest(d cli.DryRun, warnings *bytes.Buffer) Request {
	return Request{
		From: "cluster2", To: []string{"cluster1"}, Services: []string{"httpbin"},
		Namespace: "bar", TargetNamespace: "bar", CreateNamespace: true,
		ClusterName: "cluster2", VersionLabel: builders.DefaultVersionLabel,
		GatewayAddress: &gateway.Address{Host: "203.0.113.7", Port: 15443},
		ClusterDomain:  rules.DefaultClusterDomain, Locality: "eu-west-1/eu-west-1a",
		DryRun: d, Warnings: warnings,
	}
}

func unexportRequest(d cli.DryRun) UnexportRequest {
	return UnexportRequest{
		From: "cluster2", To: []string{"cluster1"}, Services: []string{"httpbin"},
		Namespace: "bar", TargetNamespace: "bar", ClusterName: "cluster2", DryRun: d,
	}
}

// dryRunOf is the dryRun option a write carried.
func dryRunOf(t *testing.T, a clienttesting.Action) []string {
	t.Helper()
	switch a := a.(type) {
	case clienttesting.CreateActionImpl:
		return a.GetCreateOptions().DryRun
	case clienttesting.PatchActionImpl:
		return a.GetPatchOptions().DryRun
	case clienttesting.UpdateActionImpl:
		return a.GetUpdateOptions().DryRun
	case clienttesting.DeleteActionImpl:
		return a.GetDeleteOptions().DryRun
	}
	t.Fatalf("unexpected write %T %s %s", a, a.GetVerb(), a.GetResource().Resource)
	return nil
}

// actions are the rows as "cluster kind name: action".
func actions(rows []cli.Row) []string {
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%s %s %s: %s", r.Cluster, r.Kind, r.Name, r.Action))
	}
	return out
}

func TestExportOnFakes(t *testing.T) {
	tests := map[string]struct {
		dry         cli.DryRun
		wantActions []string
		check       func(t *testing.T, f *fakes)
	}{
		"client dry run: only the source is read, nothing is sent": {
			dry: cli.DryRunClient,
			wantActions: []string{
				"cluster1 ServiceEntry httpbin-bar: planned",
				"cluster1 DestinationRule httpbin-bar-global: planned",
				"cluster2 DestinationRule httpbin-bar-local: planned",
			},
			check: checkNothingSent,
		},
		"server dry run: every write is sent with dryRun=All": {
			dry: cli.DryRunServer,
			wantActions: []string{
				"cluster1 Namespace bar: created",
				"cluster1 ServiceEntry httpbin-bar: created",
				"cluster1 DestinationRule httpbin-bar-global: created",
				"cluster2 DestinationRule httpbin-bar-local: created",
			},
			check: checkAllDry,
		},
		"a run creates the entry, the rules and the VIP claim": {
			dry: cli.DryRunNone,
			wantActions: []string{
				"cluster1 Namespace bar: created",
				"cluster1 ServiceEntry httpbin-bar: created",
				"cluster1 DestinationRule httpbin-bar-global: created",
				"cluster2 DestinationRule httpbin-bar-local: created",
			},
			check: checkCreated,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakes()
			res, err := Export(t.Context(), f.factory(), exportRequest(tc.dry, nil))
			if err != nil {
				t.Fatal(err)
			}
			if res.Err != nil {
				t.Fatalf("Err = %v\nrows: %v", res.Err, actions(res.Rows))
			}
			if got := actions(res.Rows); !slices.Equal(got, tc.wantActions) {
				t.Errorf("rows:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.wantActions, "\n  "))
			}
			tc.check(t, f)
		})
	}
}

// checkNothingSent: a client dry run reads only the source.
func checkNothingSent(t *testing.T, f *fakes) {
	if w := f.writes(); len(w) != 0 {
		t.Errorf("sent %d writes, want none: %v", len(w), w)
	}
	if n := len(f.dstKube.Actions()) + len(f.dstDyn.Actions()); n != 0 {
		t.Errorf("made %d requests to the target, want none", n)
	}
}

// checkAllDry: a server dry run sends what a run would, each marked dry.
func checkAllDry(t *testing.T, f *fakes) {
	var sent []string
	for _, a := range f.writes() {
		sent = append(sent, a.GetVerb()+" "+a.GetResource().Resource)
		if d := dryRunOf(t, a); !slices.Equal(d, []string{metav1.DryRunAll}) {
			t.Errorf("%s %s carries dryRun %v, want [All]", a.GetVerb(), a.GetResource().Resource, d)
		}
	}
	slices.Sort(sent)
	want := []string{"create destinationrules", "create destinationrules", "create namespaces", "create serviceentries"}
	if !slices.Equal(sent, want) {
		t.Errorf("sent %v, want %v (no VIPClaim: a server dry run claims nothing)", sent, want)
	}
}

// checkCreated: a run writes the entry with its VIP, claimed, and both
// rules, none of them dry.
func checkCreated(t *testing.T, f *fakes) {
	se := mustGet(t, f.dstDyn, rules.ServiceEntryGVR, "bar", "httpbin-bar")
	if got := builders.SourcesOf(se); len(got) != 1 || got[0].Cluster != "cluster2" || got[0].GatewayHost != "203.0.113.7" {
		t.Errorf("entry's sources = %+v, want cluster2's gateway", got)
	}
	addrs := builders.Addresses(se)
	if len(addrs) != 1 {
		t.Fatalf("entry's addresses = %v, want one VIP", addrs)
	}
	mustGet(t, f.dstDyn, vip.GVR, "", addrs[0])
	mustGet(t, f.dstDyn, rules.DestinationRuleGVR, "bar", "httpbin-bar-global")
	local := mustGet(t, f.srcDyn, rules.DestinationRuleGVR, "bar", "httpbin-bar-local")
	if to := local.GetAnnotations()[builders.AnnotationExportedTo]; to != "cluster1/bar" {
		t.Errorf("local rule exported-to = %q, want cluster1/bar", to)
	}
	for _, a := range f.writes() {
		if d := dryRunOf(t, a); len(d) != 0 {
			t.Errorf("%s %s carries dryRun %v", a.GetVerb(), a.GetResource().Resource, d)
		}
	}
}

// Without VIPClaims served, VIP uniqueness is best effort, and export says
// so once for the target, naming it.
func TestExportWarnsWithoutClaims(t *testing.T) {
	f := newFakes()
	f.dstDyn.PrependReactor("list", "vipclaims", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(vip.GVR.GroupResource(), "")
	})
	var warnings bytes.Buffer
	res, err := Export(t.Context(), f.factory(), exportRequest(cli.DryRunNone, &warnings))
	if err != nil || res.Err != nil {
		t.Fatalf("Export = %v, %v", err, res.Err)
	}
	if want := "Warning: cluster1: " + warnNoClaims + "\n"; warnings.String() != want {
		t.Errorf("warnings:\n%s\nwant:\n%s", warnings.String(), want)
	}
}

func TestExportFailsOnlyTheUnknownTarget(t *testing.T) {
	f := newFakes()
	req := exportRequest(cli.DryRunNone, nil)
	req.To = []string{"cluster9", "cluster1"}
	res, err := Export(t.Context(), f.factory(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Err == nil || !strings.Contains(res.Err.Error(), "cluster9: --to: context \"cluster9\"") {
		t.Errorf("Err = %v, want one naming cluster9 and --to", res.Err)
	}
	mustGet(t, f.dstDyn, rules.ServiceEntryGVR, "bar", "httpbin-bar")
}

func TestExportMissingService(t *testing.T) {
	f := newFakes()
	req := exportRequest(cli.DryRunNone, nil)
	req.Services = []string{"httpbin", "nope"}
	res, err := Export(t.Context(), f.factory(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Err == nil || !strings.Contains(res.Err.Error(), "service bar/nope not found in cluster cluster2") {
		t.Errorf("Err = %v, want one naming the missing Service", res.Err)
	}
	if got := actions(res.Rows); len(got) != 5 || got[0] != "cluster2 Service nope: failed" {
		t.Errorf("rows = %v, want the missing Service first, then httpbin's", got)
	}
}

func TestUnexportOnFakes(t *testing.T) {
	f := newFakes()
	if res, err := Export(t.Context(), f.factory(), exportRequest(cli.DryRunNone, nil)); err != nil || res.Err != nil {
		t.Fatalf("export: %v, %v", err, res.Err)
	}
	addr := builders.Addresses(mustGet(t, f.dstDyn, rules.ServiceEntryGVR, "bar", "httpbin-bar"))[0]
	want := []string{
		"cluster1 ServiceEntry httpbin-bar: deleted",
		"cluster1 DestinationRule httpbin-bar-global: deleted",
		"cluster2 DestinationRule httpbin-bar-local: deleted",
	}

	f.reset()
	res := Unexport(t.Context(), f.factory(), unexportRequest(cli.DryRunClient))
	if res.Err != nil || !slices.Equal(actions(res.Rows), want) {
		t.Errorf("client dry run: %v, rows %v; want %v", res.Err, actions(res.Rows), want)
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("client dry run sent %v", w)
	}

	f.reset()
	res = Unexport(t.Context(), f.factory(), unexportRequest(cli.DryRunNone))
	if res.Err != nil || !slices.Equal(actions(res.Rows), want) {
		t.Errorf("unexport: %v, rows %v; want %v", res.Err, actions(res.Rows), want)
	}
	for _, o := range []struct {
		dyn      *dynamicfake.FakeDynamicClient
		gvr      schema.GroupVersionResource
		ns, name string
	}{
		{f.dstDyn, rules.ServiceEntryGVR, "bar", "httpbin-bar"},
		{f.dstDyn, rules.DestinationRuleGVR, "bar", "httpbin-bar-global"},
		{f.dstDyn, vip.GVR, "", addr},
		{f.srcDyn, rules.DestinationRuleGVR, "bar", "httpbin-bar-local"},
	} {
		if _, err := (cli.Writer{Dynamic: o.dyn}).Resource(o.gvr, o.ns).Get(t.Context(), o.name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s %s/%s after unexport: %v, want it gone", o.gvr.Resource, o.ns, o.name, err)
		}
	}
}

func mustGet(t *testing.T, dyn *dynamicfake.FakeDynamicClient, gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := (cli.Writer{Dynamic: dyn}).Get(t.Context(), gvr, ns, name)
	if err != nil || u == nil {
		t.Fatalf("%s %s/%s: %v, %v; want it written", gvr.Resource, ns, name, u, err)
	}
	return u
}

func TestWriterPut(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds)
	w := cli.Writer{Dynamic: dyn}
	desired, err := builders.ServiceEntry(builders.Export{
		Name: "httpbin", Namespace: "bar",
		Ports:   []builders.Port{{Name: "http", Number: 80, Protocol: "HTTP"}},
		Sources: []builders.Source{{Cluster: "c2", GatewayHost: "192.0.2.1", GatewayPort: 15443}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, action, err := w.Put(t.Context(), rules.ServiceEntryGVR, nil, desired)
	if err != nil || action != cli.Created {
		t.Fatalf("put(new) = %s, %v", action, err)
	}
	if _, action, err := w.Put(t.Context(), rules.ServiceEntryGVR, got, desired); err != nil || action != cli.Unchanged {
		t.Errorf("put(same) = %s, %v; want unchanged", action, err)
	}
	user := entry("bar", "httpbin-bar")
	if _, action, err := w.Put(t.Context(), rules.ServiceEntryGVR, user, desired); !errors.Is(err, cli.ErrNotManaged) || action != cli.Skipped {
		t.Errorf("put(over a user's object) = %s, %v; want skipped, not managed", action, err)
	}
}
