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
	clienttesting "k8s.io/client-go/testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli/clitest"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/gateway"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

// fakes are a source cluster (cluster2) with Service bar/httpbin of one
// version, and a target cluster (cluster1) without namespace bar and with
// VIPClaims served.
type fakes struct {
	src, dst *clitest.Cluster
}

func newFakes() *fakes {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "httpbin", Namespace: "bar"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "httpbin"}, Ports: []corev1.ServicePort{{Name: "http", Port: 8000}}},
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "httpbin-v1", Namespace: "bar", Labels: map[string]string{"app": "httpbin", "version": "v1"}}}
	return &fakes{src: clitest.NewCluster("cluster2", svc, pod), dst: clitest.NewCluster("cluster1")}
}

func (f *fakes) clusters() clitest.Clusters { return clitest.Clusters{f.dst, f.src} }

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
			res, err := Export(t.Context(), f.clusters().Factory(t), exportRequest(tc.dry, nil))
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
	if w := f.clusters().Writes(); len(w) != 0 {
		t.Errorf("sent %d writes, want none: %v", len(w), w)
	}
	if n := len(f.dst.Actions()); n != 0 {
		t.Errorf("made %d requests to the target, want none", n)
	}
}

// checkAllDry: a server dry run sends what a run would, each marked dry.
func checkAllDry(t *testing.T, f *fakes) {
	var sent []string
	for _, a := range f.clusters().Writes() {
		sent = append(sent, a.GetVerb()+" "+a.GetResource().Resource)
		if d := clitest.DryRunOf(a); !slices.Equal(d, []string{metav1.DryRunAll}) {
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
	se := mustGet(t, f.dst, rules.ServiceEntryGVR, "bar", "httpbin-bar")
	if got := builders.SourcesOf(se); len(got) != 1 || got[0].Cluster != "cluster2" || got[0].GatewayHost != "203.0.113.7" {
		t.Errorf("entry's sources = %+v, want cluster2's gateway", got)
	}
	addrs := builders.Addresses(se)
	if len(addrs) != 1 {
		t.Fatalf("entry's addresses = %v, want one VIP", addrs)
	}
	mustGet(t, f.dst, vip.GVR, "", addrs[0])
	mustGet(t, f.dst, rules.DestinationRuleGVR, "bar", "httpbin-bar-global")
	local := mustGet(t, f.src, rules.DestinationRuleGVR, "bar", "httpbin-bar-local")
	if to := local.GetAnnotations()[builders.AnnotationExportedTo]; to != "cluster1/bar" {
		t.Errorf("local rule exported-to = %q, want cluster1/bar", to)
	}
	for _, a := range f.clusters().Writes() {
		if d := clitest.DryRunOf(a); len(d) != 0 {
			t.Errorf("%s %s carries dryRun %v", a.GetVerb(), a.GetResource().Resource, d)
		}
	}
}

// Without VIPClaims served, VIP uniqueness is best effort, and export says
// so once for the target, naming it.
func TestExportWarnsWithoutClaims(t *testing.T) {
	f := newFakes()
	f.dst.DynamicFake.PrependReactor("list", "vipclaims", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(vip.GVR.GroupResource(), "")
	})
	var warnings bytes.Buffer
	res, err := Export(t.Context(), f.clusters().Factory(t), exportRequest(cli.DryRunNone, &warnings))
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
	res, err := Export(t.Context(), f.clusters().Factory(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Err == nil || !strings.Contains(res.Err.Error(), "cluster9: --to: context \"cluster9\"") {
		t.Errorf("Err = %v, want one naming cluster9 and --to", res.Err)
	}
	mustGet(t, f.dst, rules.ServiceEntryGVR, "bar", "httpbin-bar")
}

func TestExportMissingService(t *testing.T) {
	f := newFakes()
	req := exportRequest(cli.DryRunNone, nil)
	req.Services = []string{"httpbin", "nope"}
	res, err := Export(t.Context(), f.clusters().Factory(t), req)
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
	if res, err := Export(t.Context(), f.clusters().Factory(t), exportRequest(cli.DryRunNone, nil)); err != nil || res.Err != nil {
		t.Fatalf("export: %v, %v", err, res.Err)
	}
	addr := builders.Addresses(mustGet(t, f.dst, rules.ServiceEntryGVR, "bar", "httpbin-bar"))[0]
	want := []string{
		"cluster1 ServiceEntry httpbin-bar: deleted",
		"cluster1 DestinationRule httpbin-bar-global: deleted",
		"cluster2 DestinationRule httpbin-bar-local: deleted",
	}

	f.clusters().Reset()
	res := Unexport(t.Context(), f.clusters().Factory(t), unexportRequest(cli.DryRunClient))
	if res.Err != nil || !slices.Equal(actions(res.Rows), want) {
		t.Errorf("client dry run: %v, rows %v; want %v", res.Err, actions(res.Rows), want)
	}
	if w := f.clusters().Writes(); len(w) != 0 {
		t.Errorf("client dry run sent %v", w)
	}

	f.clusters().Reset()
	res = Unexport(t.Context(), f.clusters().Factory(t), unexportRequest(cli.DryRunNone))
	if res.Err != nil || !slices.Equal(actions(res.Rows), want) {
		t.Errorf("unexport: %v, rows %v; want %v", res.Err, actions(res.Rows), want)
	}
	for _, o := range []struct {
		c        *clitest.Cluster
		gvr      schema.GroupVersionResource
		ns, name string
	}{
		{f.dst, rules.ServiceEntryGVR, "bar", "httpbin-bar"},
		{f.dst, rules.DestinationRuleGVR, "bar", "httpbin-bar-global"},
		{f.dst, vip.GVR, "", addr},
		{f.src, rules.DestinationRuleGVR, "bar", "httpbin-bar-local"},
	} {
		if _, err := (cli.Writer{Dynamic: o.c.Dynamic}).Resource(o.gvr, o.ns).Get(t.Context(), o.name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s %s/%s after unexport: %v, want it gone", o.gvr.Resource, o.ns, o.name, err)
		}
	}
}

func mustGet(t *testing.T, c *clitest.Cluster, gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := (cli.Writer{Dynamic: c.Dynamic}).Get(t.Context(), gvr, ns, name)
	if err != nil || u == nil {
		t.Fatalf("%s %s/%s: %v, %v; want it written", gvr.Resource, ns, name, u, err)
	}
	return u
}

func TestWriterPut(t *testing.T) {
	w := cli.Writer{Dynamic: clitest.NewCluster("cluster1").Dynamic}
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
