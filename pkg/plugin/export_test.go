package plugin

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

func TestExportValidate(t *testing.T) {
	tests := map[string]struct {
		mutate func(*ExportOptions)
		err    string
	}{
		"ok":                      {mutate: func(*ExportOptions) {}},
		"nothing to export":       {mutate: func(o *ExportOptions) { o.Services = nil }, err: "SERVICE..., -l SELECTOR or --all"},
		"names and --all":         {mutate: func(o *ExportOptions) { o.All = true }, err: "only one of"},
		"namespaced name":         {mutate: func(o *ExportOptions) { o.Services = []string{"bar/httpbin"} }, err: "-n"},
		"no --to":                 {mutate: func(o *ExportOptions) { o.To = nil }, err: "--to is required"},
		"--to is the source":      {mutate: func(o *ExportOptions) { o.To = []string{"cluster2"} }, err: "also the source"},
		"--to twice":              {mutate: func(o *ExportOptions) { o.To = []string{"cluster1", "cluster1"} }, err: "twice"},
		"bad --dry-run":           {mutate: func(o *ExportOptions) { o.DryRun = "maybe" }, err: "--dry-run"},
		"bad -o":                  {mutate: func(o *ExportOptions) { out := "table"; o.PrintFlags.OutputFormat = &out }, err: "--output"},
		"cluster name with comma": {mutate: func(o *ExportOptions) { o.FromClusterName = "a,b" }, err: "--from-cluster-name"},
		"bad cluster domain":      {mutate: func(o *ExportOptions) { o.ClusterDomain = "Corp_Internal" }, err: "--source-cluster-domain"},
		"--via-egress refused":    {mutate: func(o *ExportOptions) { o.ViaEgress = true }, err: "--via-egress is refused"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := &ExportOptions{
				Services: []string{"httpbin"}, From: "cluster2", To: []string{"cluster1"},
				FromClusterName: "cluster2", ClusterDomain: rules.DefaultClusterDomain, DryRun: DryRunNone, PrintFlags: cli.NewPrintFlags("exported"),
			}
			tc.mutate(o)
			err := o.Validate()
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.err)
			}
		})
	}
}

func TestSelectServices(t *testing.T) {
	items := []corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "a"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "b"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "ext"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName}},
	}
	got, err := selectServices(items, []string{"b", "missing"}, "", false)
	if err != nil || len(got) != 1 || got["b"] == nil {
		t.Errorf("selectServices(named b, missing) = %v, %v; want only b", got, err)
	}
	got, err = selectServices(items, nil, "", true)
	if err != nil || len(got) != 2 || got["ext"] != nil {
		t.Errorf("selectServices(--all) = %v, %v; want a and b without the ExternalName Service", got, err)
	}
	if _, err := selectServices(nil, nil, "tier=api", false); err == nil || !strings.Contains(err.Error(), "-l tier=api") {
		t.Errorf("selectServices(no match) error = %v, want one naming -l tier=api", err)
	}
}

func entry(ns, name string, addrs ...string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": rules.IstioAPIVersion, "kind": rules.KindServiceEntry,
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     map[string]any{"hosts": []any{"x.example.com"}},
	}}
	if len(addrs) > 0 {
		a := make([]any, 0, len(addrs))
		for _, s := range addrs {
			a = append(a, s)
		}
		u.Object["spec"].(map[string]any)["addresses"] = a
	}
	return u
}

var listKinds = map[schema.GroupVersionResource]string{
	vip.GVR:                  "VIPClaimList",
	rules.ServiceEntryGVR:    "ServiceEntryList",
	rules.DestinationRuleGVR: "DestinationRuleList",
}

func TestVIPAllocatorBestEffort(t *testing.T) {
	host := rules.FormatHost("httpbin", "bar", "")
	space := rules.DefaultVIPSpace()
	first := space.Candidate(host)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds)
	dyn.PrependReactor("list", "vipclaims", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(vip.GVR.GroupResource(), "")
	})
	entries := map[string]*unstructured.Unstructured{"foo/squatter": entry("foo", "squatter", first.String())}
	a, err := newVIPAllocator(t.Context(), dyn, entries, false)
	if err != nil {
		t.Fatal(err)
	}
	if a.usesClaims() {
		t.Fatal("usesClaims() = true without the VIPClaim resource")
	}
	o := vip.Owner{Namespace: "bar", Name: "httpbin-bar", Host: host}
	got, claimed, err := a.forEntry(t.Context(), o, nil)
	if err != nil || claimed || got == first || !space.Contains(got) {
		t.Errorf("forEntry() = %s, %v, %v; want a VIP other than the squatter's %s, not claimed", got, claimed, err, first)
	}
	// A second entry of the same host in another namespace gets yet another.
	o2 := vip.Owner{Namespace: "baz", Name: "httpbin-bar", Host: host}
	got2, _, err := a.forEntry(t.Context(), o2, nil)
	if err != nil || got2 == got || got2 == first {
		t.Errorf("second forEntry() = %s, %v; want a third address", got2, err)
	}
	// An entry keeps the address it has.
	keep := netip.MustParseAddr("240.0.0.77")
	if got, _, err := a.forEntry(t.Context(), o, []string{keep.String()}); err != nil || got != keep {
		t.Errorf("forEntry(existing %s) = %s, %v", keep, got, err)
	}
}

func TestVIPAllocatorClaims(t *testing.T) {
	host := rules.FormatHost("httpbin", "bar", "")
	space := rules.DefaultVIPSpace()
	first := space.Candidate(host)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds)
	// Another entry holds the first candidate.
	other := vip.Owner{Namespace: "foo", Name: "other", Host: "other.foo.global"}
	c := vip.NewClaims(dyn, space)
	if err := c.Claim(t.Context(), first, other, false); err != nil {
		t.Fatal(err)
	}
	a, err := newVIPAllocator(t.Context(), dyn, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if !a.usesClaims() {
		t.Fatal("usesClaims() = false with VIPClaims served")
	}
	o := vip.Owner{Namespace: "bar", Name: "httpbin-bar", Host: host}
	got, claimed, err := a.forEntry(t.Context(), o, nil)
	if err != nil || !claimed || got == first {
		t.Fatalf("forEntry() = %s, %v, %v; want a new claimed VIP other than %s", got, claimed, err, first)
	}
	h, found, err := c.Holder(t.Context(), got)
	if err != nil || !found || !h.Same(o) {
		t.Errorf("holder of %s = %v, %v, %v; want %s", got, h, found, err, o)
	}
	// Keeping an address another entry holds is an error naming the holder.
	_, _, err = a.forEntry(t.Context(), o, []string{first.String()})
	var taken *vip.TakenError
	if !errors.As(err, &taken) {
		t.Errorf("forEntry(existing %s held by %s) error = %v, want a TakenError", first, other, err)
	}
	if err := a.release(t.Context(), got, o); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := c.Holder(t.Context(), got); found {
		t.Errorf("release left the claim of %s", got)
	}
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

func TestFailures(t *testing.T) {
	if err := failures([]cli.Row{{Cluster: "c1", Action: cli.Created}}, "export"); err != nil {
		t.Errorf("failures(no errors) = %v", err)
	}
	err := failures([]cli.Row{
		{Cluster: "c9", Action: cli.Failed, Err: errors.New("context unknown")},
		{Cluster: "c1", Kind: rules.KindServiceEntry, Namespace: "bar", Name: "x", Action: cli.Failed, Err: errors.New("boom")},
	}, "export")
	if err == nil || !strings.Contains(err.Error(), "c9: context unknown") || !strings.Contains(err.Error(), "c1: serviceentry bar/x: boom") {
		t.Errorf("failures() = %v", err)
	}
}

func TestPrintRows(t *testing.T) {
	se, err := builders.ServiceEntry(builders.Export{
		Name: "helloworld", Namespace: "hello",
		Ports:   []builders.Port{{Name: "http", Number: 5000, Protocol: "HTTP"}},
		Sources: []builders.Source{{Cluster: "cluster3", GatewayHost: "198.51.100.31", GatewayPort: 31443}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rows := []cli.Row{
		{Cluster: "cluster1", Kind: rules.KindServiceEntry, Namespace: "hello", Name: "helloworld-hello", Action: cli.Created, VIP: "240.0.0.4", Gateway: "198.51.100.31:31443", Object: se},
		{Cluster: "cluster9", Action: cli.Failed, Err: errors.New(`context "cluster9" is not in the kubeconfig`)},
	}
	tests := map[string]struct {
		output string
		want   []string
	}{
		"table":    {want: []string{"CLUSTER", "MESSAGE", "serviceentry/helloworld-hello", "created (dry run)", "240.0.0.4", `context "cluster9"`}},
		"name":     {output: "name", want: []string{"serviceentry.networking.istio.io/helloworld-hello"}},
		"jsonpath": {output: "jsonpath={.items[0].spec.endpoints[0].ports.http}", want: []string{"31443"}},
		"yaml":     {output: "yaml", want: []string{"kind: List", "kind: ServiceEntry", "helloworld.hello.global"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pf := cli.NewPrintFlags("exported")
			pf.OutputFormat = &tc.output
			var out strings.Builder
			if err := cli.PrintRows(&out, pf, rows, " (dry run)"); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("-o %q output lacks %q:\n%s", tc.output, w, out.String())
				}
			}
		})
	}
}
