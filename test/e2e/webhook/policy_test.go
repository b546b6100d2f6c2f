package webhook

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

func kubectl(t *testing.T, ctx context.Context, cluster, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var in *strings.Reader
	if stdin != "" {
		in = strings.NewReader(stdin)
	}
	args = append([]string{"--context", cluster}, args...)
	if in == nil {
		return theLab.Kubectl(ctx, nil, args...)
	}
	return theLab.Kubectl(ctx, in, args...)
}

func seedPath(t *testing.T, name string) string {
	t.Helper()
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "test", "seeds", name)
}

// seedSpecs reads the ServiceEntry specs of a seed file by name.
func seedSpecs(t *testing.T, file string) map[string]map[string]any {
	t.Helper()
	b, err := os.ReadFile(seedPath(t, file))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		if m["kind"] == "ServiceEntry" {
			out[m["metadata"].(map[string]any)["name"].(string)] = m["spec"].(map[string]any)
		}
	}
	return out
}

func getSpec(t *testing.T, ctx context.Context, cluster, ns, name string) map[string]any {
	t.Helper()
	out, _, err := kubectl(t, ctx, cluster, "", "get", "serviceentries.v1.networking.istio.io", "-n", ns, name, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	return m["spec"].(map[string]any)
}

// normalize makes YAML and JSON numbers comparable.
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSeedsAdmittedUnchanged applies each seed document on its own (two of
// them define the same host, which one cluster admits only once), checks
// it is stored as written with its VIP claimed for it, and deletes it.
func TestSeedsAdmittedUnchanged(t *testing.T) {
	ctx := t.Context()
	for file, vips := range map[string]map[string]string{
		"httpbin-bar.yaml":          {"240.0.0.2": "httpbin-bar"},
		"httpbin-bar-v1alpha3.yaml": {"240.0.0.3": "httpbin-bar-v1alpha3"},
		"helloworld-hello.yaml":     {"240.0.0.4": "helloworld-hello"},
	} {
		t.Run(file, func(t *testing.T) {
			if _, _, err := kubectl(t, ctx, "cluster1", "", "apply", "-f", seedPath(t, file)); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if _, _, err := kubectl(t, context.Background(), "cluster1", "", "delete", "-f", seedPath(t, file)); err != nil {
					t.Error(err)
				}
			})
			for name, want := range seedSpecs(t, file) {
				ns := "foo"
				if strings.HasPrefix(name, "helloworld") {
					ns = "hello"
				}
				got := getSpec(t, ctx, "cluster1", ns, name)
				if !reflect.DeepEqual(normalize(t, got), normalize(t, want)) {
					t.Errorf("%s/%s stored as %v, want the seed unchanged %v", ns, name, got, want)
				}
			}
			for addr, holder := range vips {
				c, err := theLab.Cluster("cluster1").Dynamic.Resource(vip.GVR).Get(ctx, addr, metav1.GetOptions{})
				if err != nil {
					t.Fatalf("claim %s: %v", addr, err)
				}
				if got, _, _ := unstructuredString(c.Object, "spec", "serviceEntry", "name"); got != holder {
					t.Errorf("claim %s held by %q, want %q", addr, got, holder)
				}
			}
		})
	}
}

func unstructuredString(m map[string]any, path ...string) (string, bool, error) {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = mm[p]
	}
	s, ok := cur.(string)
	return s, ok, nil
}

const minimalYAML = `apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata:
  name: %s
  namespace: foo
spec:
  hosts: [%s]
  ports:
  - {name: http1, number: 8000, protocol: HTTP}
  endpoints:
  - address: 203.0.113.7
    labels: {cluster: cluster2}
`

func minimal(name, host string) string {
	return strings.ReplaceAll(strings.Replace(strings.Replace(minimalYAML, "%s", name, 1), "%s", host, 1), "\t", "")
}

func TestDefaulted(t *testing.T) {
	ctx := t.Context()
	if _, _, err := kubectl(t, ctx, "cluster1", minimal("defaulted", "sleep.foo.global"), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	spec := getSpec(t, ctx, "cluster1", "foo", "defaulted")
	if spec["location"] != rules.LocationMeshInternal || spec["resolution"] != rules.ResolutionDNS {
		t.Errorf("location/resolution = %v/%v, want MESH_INTERNAL/DNS", spec["location"], spec["resolution"])
	}
	addrs, _ := spec["addresses"].([]any)
	if len(addrs) != 1 {
		t.Fatalf("addresses = %v, want one VIP", spec["addresses"])
	}
	if _, err := rules.ParseVIP(addrs[0].(string), rules.DefaultVIPSpace()); err != nil {
		t.Errorf("allocated VIP %v: %v", addrs[0], err)
	}
	if want := rules.DefaultVIPSpace().Candidate("sleep.foo.global").String(); addrs[0] != want {
		t.Errorf("VIP %v, want the host's first candidate %s", addrs[0], want)
	}
	ep := spec["endpoints"].([]any)[0].(map[string]any)
	if p := ep["ports"].(map[string]any)["http1"]; p != float64(rules.GatewayPort) {
		t.Errorf("endpoint ports = %v, want http1: 15443", ep["ports"])
	}
	// Re-applying the same manifest leaves the entry as it was: kubectl
	// replaces the endpoints list (a CRD list has no merge key) and the
	// webhook fills the same ports and keeps the same VIP.
	if _, _, err := kubectl(t, ctx, "cluster1", minimal("defaulted", "sleep.foo.global"), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	if again := getSpec(t, ctx, "cluster1", "foo", "defaulted"); !reflect.DeepEqual(again, spec) {
		t.Errorf("re-apply changed the entry:\n%v\nto\n%v", spec, again)
	}
}

// badVariants are ServiceEntries the policy rejects, each with the field
// path the message must name. They start from the minimal entry.
var badVariants = map[string]struct {
	yaml, field string
}{
	"mixed hosts":        {yaml: "  hosts: [httpbin.bar.global, httpbin.example.com]\n", field: "spec.hosts"},
	"two global hosts":   {yaml: "  hosts: [httpbin.bar.global, sleep.foo.global]\n", field: "spec.hosts"},
	"bad host form":      {yaml: "  hosts: [v1.httpbin.bar.global]\n", field: "spec.hosts"},
	"mesh external":      {yaml: "  location: MESH_EXTERNAL\n", field: "spec.location"},
	"resolution none":    {yaml: "  resolution: NONE\n  endpoints: null\n", field: "spec.resolution"},
	"cidr address":       {yaml: "  resolution: STATIC\n  addresses: [240.0.9.0/24]\n", field: "spec.addresses"},
	"address not VIP":    {yaml: "  addresses: [10.0.0.5]\n", field: "spec.addresses"},
	"istio range":        {yaml: "  addresses: [240.240.0.5]\n", field: "spec.addresses"},
	"two addresses":      {yaml: "  addresses: [240.0.9.1, 240.0.9.2]\n", field: "spec.addresses"},
	"no ports":           {yaml: "  ports: []\n", field: "spec.ports"},
	"no endpoints":       {yaml: "  endpoints: []\n", field: "spec.endpoints"},
	"wrong gateway port": {yaml: "  endpoints:\n  - {address: 203.0.113.7, ports: {http1: 8000}}\n", field: "spec.endpoints"},
	"unknown port name":  {yaml: "  endpoints:\n  - {address: 203.0.113.7, ports: {grpc: 15443}}\n", field: "spec.endpoints[0].ports[grpc]"},
	"empty endpoint":     {yaml: "  endpoints:\n  - {address: \"\"}\n", field: "spec.endpoints[0].address"},
	"bad protocol":       {yaml: "  ports:\n  - {name: http1, number: 8000, protocol: SMTP}\n", field: "spec.ports[0].protocol"},
	"duplicate names":    {yaml: "  ports:\n  - {name: http1, number: 8000, protocol: HTTP}\n  - {name: http1, number: 9000, protocol: HTTP}\n", field: "spec.ports[1]"},
}

// variant replaces the minimal entry's spec keys with those of extra.
func variant(t *testing.T, name, extra string) string {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(minimal(name, "httpbin.bar.global")), &m); err != nil {
		t.Fatal(err)
	}
	var e map[string]any
	if err := yaml.Unmarshal([]byte("spec:\n"+extra), &e); err != nil {
		t.Fatal(err)
	}
	for k, v := range e["spec"].(map[string]any) {
		m["spec"].(map[string]any)[k] = v
	}
	b, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBadVariantsDenied(t *testing.T) {
	ctx := t.Context()
	i := 0
	for name, tc := range badVariants {
		i++
		t.Run(name, func(t *testing.T) {
			obj := variant(t, "bad-"+strings.ReplaceAll(strings.ToLower(name), " ", "-"), tc.yaml)
			_, stderr, err := kubectl(t, ctx, "cluster1", obj, "apply", "-f", "-")
			if err == nil {
				t.Fatalf("%s admitted:\n%s", name, obj)
			}
			if !strings.Contains(stderr, tc.field) {
				t.Errorf("denial of\n%s\ndoes not name %s:\n%s", obj, tc.field, stderr)
			}
		})
	}
}

func TestWarnModeAdmitsWithWarnings(t *testing.T) {
	ctx := t.Context()
	for name, tc := range badVariants {
		switch name {
		case "duplicate names", "two addresses":
			continue // Istio's CRD validation itself rejects these; nothing to warn about
		}
		t.Run(name, func(t *testing.T) {
			obj := variant(t, "warn-"+strings.ReplaceAll(strings.ToLower(name), " ", "-"), tc.yaml)
			_, stderr, err := kubectl(t, ctx, "cluster2", obj, "apply", "-f", "-")
			if err != nil {
				t.Fatalf("warn mode denied\n%s\n%v", obj, err)
			}
			if !strings.Contains(stderr, "Warning:") || !strings.Contains(stderr, tc.field) {
				t.Errorf("warn mode: no warning naming %s for\n%s\nstderr: %s", tc.field, obj, stderr)
			}
		})
	}
}

func TestNonGlobalNeverSent(t *testing.T) {
	ctx := t.Context()
	total := func() float64 {
		v, err := deny.Metric(ctx, "mesh_webhook_admissions_total", nil)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := total()
	if before == 0 {
		t.Fatal("no admissions counted at all; is the metric exported?")
	}
	ext := `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external-api, namespace: foo}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{name: https, number: 443, protocol: TLS}]
`
	if _, _, err := kubectl(t, ctx, "cluster1", ext, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := kubectl(t, ctx, "cluster1", strings.Replace(ext, "443}]", "8443}]", 1), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	if after := total(); after != before {
		t.Fatalf("admissions went from %v to %v for a non-.global entry; the matchConditions must keep it away", before, after)
	}
	// Writes only: deletes of .global entries reach the delete webhook,
	// which a handler without a DELETE path counts as skipped too.
	for _, op := range []string{"CREATE", "UPDATE"} {
		if skipped, _ := deny.Metric(ctx, "mesh_webhook_admissions_total", map[string]string{"verdict": "skipped", "operation": op}); skipped != 0 {
			t.Errorf("%v %s requests without a .global host reached the webhook", skipped, op)
		}
	}
	// A .global one is counted, so the metric is live.
	if _, _, err := kubectl(t, ctx, "cluster1", minimal("counted", "counted.foo.global"), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	if after := total(); after < before+2 {
		t.Errorf("a .global create moved admissions from %v to %v, want both webhooks counted", before, after)
	}
}

func TestServerDryRunCreatesNoClaim(t *testing.T) {
	ctx := t.Context()
	c := theLab.Cluster("cluster1")
	out, _, err := kubectl(t, ctx, "cluster1", minimal("dry", "dry.foo.global"), "apply", "--dry-run=server", "-o", "json", "-f", "-")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	addrs, _ := m["spec"].(map[string]any)["addresses"].([]any)
	if len(addrs) != 1 {
		t.Fatalf("dry run returned addresses %v, want the VIP a real create would get", addrs)
	}
	a := netip.MustParseAddr(addrs[0].(string))
	if _, err := c.Dynamic.Resource(vip.GVR).Get(ctx, a.String(), metav1.GetOptions{}); err == nil {
		t.Fatalf("dry run created claim %s", a)
	}
	if _, err := c.Dynamic.Resource(rules.ServiceEntryGVR).Namespace("foo").Get(ctx, "dry", metav1.GetOptions{}); err == nil {
		t.Fatal("dry run stored the entry")
	}
}
