// Package route checks `kubectl mesh route` end to end: the real kubectl
// runs the plugin against a lab of real API servers, after a real export.
package route

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/routing"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

var theLab *lab.Lab

func TestMain(m *testing.M) {
	os.Exit(lab.RunTests(m, lab.Options{Clusters: lab.DefaultClusters}, func(_ context.Context, l *lab.Lab, _ string) (func(), error) {
		theLab = l
		return nil, nil
	}))
}

func mesh(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	stdout, stderr, err = theLab.Kubectl(t.Context(), nil, append([]string{"mesh"}, args...)...)
	t.Logf("kubectl mesh %s\n%s%s", strings.Join(args, " "), stdout, stderr)
	return stdout, stderr, err
}

func mustMesh(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := mesh(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return stdout, stderr
}

func object(t *testing.T, cluster string, gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := theLab.Cluster(cluster).Dynamic.Resource(gvr).Namespace(ns).Get(t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// rules renders a VirtualService's http routes compactly: name → host|subset|weight ….
func httpRules(t *testing.T, vs *unstructured.Unstructured) []string {
	t.Helper()
	var out []string
	for _, h := range routing.HTTPRules(vs) {
		line, _ := h["name"].(string)
		if m, ok := h["match"]; ok {
			b, _ := json.Marshal(m)
			line += " " + string(b)
		}
		for _, r := range h["route"].([]any) {
			rd := r.(map[string]any)
			dest := rd["destination"].(map[string]any)
			line += " → " + dest["host"].(string)
			if s, ok := dest["subset"]; ok {
				line += "|" + s.(string)
			}
			if w, ok := rd["weight"]; ok {
				b, _ := json.Marshal(w)
				line += "|" + string(b)
			}
		}
		out = append(out, line)
	}
	return out
}

// The seed walkthrough: helloworld v1 runs in cluster1, v2 and v3 in
// cluster2. In cluster1, jason's requests go 70/30 to v2/v3 through
// helloworld.hello.global, all others to the local v1.
func TestRouteSeedScenario(t *testing.T) {
	mustMesh(t, "export", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster1")
	t.Cleanup(func() {
		_, _, _ = theLab.Kubectl(context.Background(), nil, "mesh", "route", "helloworld", "-n", "hello", "--context", "cluster1", "--remove")
		_, _, _ = theLab.Kubectl(context.Background(), nil, "mesh", "unexport", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster1")
	})
	seed := []string{"route", "helloworld", "-n", "hello", "--context", "cluster1", "--when", "header:end-user=jason", "--to", "v2=70,v3=30", "--otherwise", "v1"}
	out, _ := mustMesh(t, seed...)
	if !strings.Contains(out, "virtualservice/helloworld-hello-route") || !strings.Contains(out, "destinationrule/helloworld-hello-local") {
		t.Errorf("route output lacks the objects it wrote:\n%s", out)
	}
	vs := object(t, "cluster1", rules.VirtualServiceGVR, "hello", "helloworld-hello-route")
	if vs == nil {
		t.Fatal("no VirtualService")
	}
	hosts, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "hosts")
	if !reflect.DeepEqual(hosts, []string{"helloworld.hello.svc.cluster.local", "helloworld.hello.global"}) {
		t.Errorf("hosts = %v", hosts)
	}
	want := []string{
		`header:end-user=jason [{"headers":{"end-user":{"exact":"jason"}}}] → helloworld.hello.global|v2|70 → helloworld.hello.global|v3|30`,
		`default → helloworld.hello.svc.cluster.local|v1`,
	}
	if got := httpRules(t, vs); !reflect.DeepEqual(got, want) {
		t.Fatalf("rules =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	local := object(t, "cluster1", rules.DestinationRuleGVR, "hello", "helloworld-hello-local")
	if local == nil || !reflect.DeepEqual(builders.SubsetNames(local), []string{"v1"}) || builders.HostOf(local) != "helloworld.hello.svc.cluster.local" {
		t.Fatalf("local DestinationRule in cluster1 = %v", local)
	}

	// Again: nothing changes.
	rv := vs.GetResourceVersion()
	out, _ = mustMesh(t, seed...)
	if !strings.Contains(out, "unchanged") || object(t, "cluster1", rules.VirtualServiceGVR, "hello", "helloworld-hello-route").GetResourceVersion() != rv {
		t.Errorf("a re-run changed the VirtualService:\n%s", out)
	}

	// The same match replaces its rule in place; another match goes before
	// the default; --otherwise changes only the default.
	mustMesh(t, "route", "helloworld", "-n", "hello", "--context", "cluster1", "--when", "uri-prefix:/beta", "--to", "v3")
	mustMesh(t, "route", "helloworld", "-n", "hello", "--context", "cluster1", "--when", "header:end-user=jason", "--to", "v2")
	want = []string{
		`header:end-user=jason [{"headers":{"end-user":{"exact":"jason"}}}] → helloworld.hello.global|v2`,
		`uri-prefix:/beta [{"uri":{"prefix":"/beta"}}] → helloworld.hello.global|v3`,
		`default → helloworld.hello.svc.cluster.local|v1`,
	}
	if got := httpRules(t, object(t, "cluster1", rules.VirtualServiceGVR, "hello", "helloworld-hello-route")); !reflect.DeepEqual(got, want) {
		t.Fatalf("rules =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// --remove --when takes out one rule; --remove the whole VirtualService.
	mustMesh(t, "route", "helloworld", "-n", "hello", "--context", "cluster1", "--remove", "--when", "uri-prefix:/beta")
	if got := httpRules(t, object(t, "cluster1", rules.VirtualServiceGVR, "hello", "helloworld-hello-route")); len(got) != 2 {
		t.Fatalf("rules after --remove --when = %v", got)
	}
	mustMesh(t, "route", "helloworld", "-n", "hello", "--context", "cluster1", "--remove")
	if object(t, "cluster1", rules.VirtualServiceGVR, "hello", "helloworld-hello-route") != nil {
		t.Fatal("--remove left the VirtualService")
	}
}

// Bad input gets one clear error naming the flag, and writes nothing.
func TestRouteBadInput(t *testing.T) {
	mustMesh(t, "export", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster1")
	t.Cleanup(func() {
		_, _, _ = theLab.Kubectl(context.Background(), nil, "mesh", "unexport", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster1")
	})
	base := []string{"route", "helloworld", "-n", "hello", "--context", "cluster1"}
	tests := map[string]struct {
		args []string
		want []string
	}{
		"weights not 100":  {[]string{"--to", "v2=70,v3=20"}, []string{"--to", "add up to 90"}},
		"unknown version":  {[]string{"--to", "v9"}, []string{"version v9", "no Pod of Service hello/helloworld in cluster1 has version=v9 (it runs: v1)", "subsets: v2, v3"}},
		"malformed --when": {[]string{"--when", "end-user=jason", "--to", "v2"}, []string{"--when", "header:NAME=VALUE"}},
		"--when alone":     {[]string{"--when", "header:end-user=jason"}, []string{"--when", "needs --to"}},
		"failover without outlier detection": {[]string{"--failover", "region-cluster2=region-cluster3", "--consecutive-5xx-errors", "0"},
			[]string{"--failover", "never fails over"}},
		"distribution not 100": {[]string{"--distribute", "region1/*=region1/*:80,region2/*:30"}, []string{"--distribute", "add up to 110"}},
		"mixed":                {[]string{"--to", "v2", "--failover", "a=b"}, []string{"two commands"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, stderr, err := mesh(t, append(base, tc.args...)...)
			if err == nil {
				t.Fatal("route accepted bad input")
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("error lacks %q:\n%s", w, stderr)
				}
			}
			if object(t, "cluster1", rules.VirtualServiceGVR, "hello", "helloworld-hello-route") != nil {
				t.Fatal("a refused route wrote a VirtualService")
			}
		})
	}
}

// --failover writes localityLbSetting and outlier detection on every level
// of the .global rule (port-level settings do not inherit), a later export
// keeps it, and a region no endpoint is in gets a warning.
func TestRouteFailoverOnTheGlobalRule(t *testing.T) {
	mustMesh(t, "export", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster1")
	t.Cleanup(func() {
		_, _, _ = theLab.Kubectl(context.Background(), nil, "mesh", "unexport", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster1")
	})
	_, stderr := mustMesh(t, "route", "helloworld", "-n", "hello", "--contexts", "cluster1", "--failover", "region-cluster2=region-cluster9")
	if !strings.Contains(stderr, "no endpoint of helloworld-hello is in region region-cluster9") {
		t.Errorf("no warning about a region no endpoint is in:\n%s", stderr)
	}
	check := func(when string) {
		t.Helper()
		dr := object(t, "cluster1", rules.DestinationRuleGVR, "hello", "helloworld-hello-global")
		policies := []map[string]any{}
		top, _, _ := unstructured.NestedMap(dr.Object, "spec", "trafficPolicy")
		policies = append(policies, top)
		pls, _, _ := unstructured.NestedSlice(top, "portLevelSettings")
		subsets, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
		for _, s := range subsets {
			sp, _, _ := unstructured.NestedSlice(s.(map[string]any), "trafficPolicy", "portLevelSettings")
			pls = append(pls, sp...)
		}
		for _, p := range pls {
			policies = append(policies, p.(map[string]any))
		}
		if len(policies) != 4 { // the rule, its port, the ports of v2 and v3
			t.Fatalf("%s: %d traffic policies, want 4", when, len(policies))
		}
		for _, p := range policies {
			from, _, _ := unstructured.NestedSlice(p, "loadBalancer", "localityLbSetting", "failover")
			errs, _, _ := unstructured.NestedInt64(p, "outlierDetection", "consecutive5xxErrors")
			if len(from) != 1 || from[0].(map[string]any)["to"] != "region-cluster9" || errs != 1 {
				t.Fatalf("%s: a traffic policy without the failover and outlier detection: %v", when, p)
			}
		}
	}
	check("after route")
	mustMesh(t, "export", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster1")
	check("after a later export")
}

// --distribute --host local writes the policy on each cluster's own rule.
func TestRouteDistributeLocal(t *testing.T) {
	mustMesh(t, "route", "helloworld", "-n", "hello", "--contexts", "cluster1,cluster2", "--host", "local", "--distribute", "region-cluster1/*=region-cluster1/*:80,region-cluster2/*:20")
	for _, c := range []string{"cluster1", "cluster2"} {
		dr := object(t, c, rules.DestinationRuleGVR, "hello", "helloworld-hello-local")
		if dr == nil {
			t.Fatalf("%s: no local DestinationRule", c)
		}
		t.Cleanup(func() {
			_ = theLab.Cluster(c).Dynamic.Resource(rules.DestinationRuleGVR).Namespace("hello").Delete(context.Background(), dr.GetName(), metav1.DeleteOptions{})
		})
		to, _, _ := unstructured.NestedMap(dr.Object, "spec", "trafficPolicy", "loadBalancer", "localityLbSetting", "distribute")
		d, _, _ := unstructured.NestedSlice(dr.Object, "spec", "trafficPolicy", "loadBalancer", "localityLbSetting", "distribute")
		_ = to
		if len(d) != 1 || d[0].(map[string]any)["from"] != "region-cluster1/*" {
			t.Fatalf("%s: distribute = %v", c, d)
		}
		if p := builders.LocalityPolicyOf(dr); p == nil || p.Distribute[0].To["region-cluster1/*"] != 80 {
			t.Fatalf("%s: recorded policy = %+v", c, p)
		}
	}
}

// status reports routes and locality policies that do nothing, on objects
// written by hand next to a real export.
func TestStatusReportsRoutingProblems(t *testing.T) {
	mustMesh(t, "export", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster1")
	t.Cleanup(func() {
		_, _, _ = theLab.Kubectl(context.Background(), nil, "mesh", "unexport", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster1")
	})
	c1 := theLab.Cluster("cluster1").Dynamic
	vs := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": "by-hand", "namespace": "hello"},
		"spec": map[string]any{"hosts": []any{"helloworld.hello.global"}, "http": []any{map[string]any{"route": []any{
			map[string]any{"destination": map[string]any{"host": "helloworld.hello.global", "subset": "v9"}},
		}}}},
	}}
	dr := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
		"metadata": map[string]any{"name": "failover-by-hand", "namespace": "foo"},
		"spec": map[string]any{"host": "sleep.foo.svc.cluster.local", "trafficPolicy": map[string]any{
			"loadBalancer": map[string]any{"localityLbSetting": map[string]any{"failover": []any{map[string]any{"from": "region-cluster1", "to": "region-cluster2"}}}},
		}},
	}}
	for _, x := range []struct {
		gvr schema.GroupVersionResource
		obj *unstructured.Unstructured
	}{{rules.VirtualServiceGVR, vs}, {rules.DestinationRuleGVR, dr}} {
		ri := c1.Resource(x.gvr).Namespace(x.obj.GetNamespace())
		if _, err := ri.Create(t.Context(), x.obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ri.Delete(context.Background(), x.obj.GetName(), metav1.DeleteOptions{}) })
	}
	out, _, _ := mesh(t, "status", "--contexts", "cluster1,cluster2", "-o", "json")
	var r struct {
		Problems []struct{ Kind, Object, Message, Fix string } `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	want := map[string]string{
		"RouteToUndefinedSubset":          "virtualservice hello/by-hand",
		"FailoverWithoutOutlierDetection": "destinationrule foo/failover-by-hand",
	}
	for kind, obj := range want {
		found := false
		for _, p := range r.Problems {
			found = found || p.Kind == kind && p.Object == obj && p.Fix != ""
		}
		if !found {
			t.Errorf("status does not report %s on %s:\n%s", kind, obj, out)
		}
	}
}
