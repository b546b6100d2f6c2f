package export

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// planned runs a client-side dry run and returns the objects export would
// send to the target, by kind/namespace/name.
func planned(t *testing.T, args ...string) map[string]*unstructured.Unstructured {
	t.Helper()
	out, _ := mustMesh(t, append(args, "--dry-run=client", "-o", "json")...)
	var list unstructured.UnstructuredList
	if err := json.Unmarshal([]byte(out), &list.Object); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	items, _, _ := unstructured.NestedSlice(list.Object, "items")
	objs := map[string]*unstructured.Unstructured{}
	for _, it := range items {
		u := &unstructured.Unstructured{Object: it.(map[string]any)}
		objs[u.GetKind()+"/"+u.GetNamespace()+"/"+u.GetName()] = u
	}
	return objs
}

// TestWebhookAdmitsExportUnchanged: with mesh-webhook running for cluster1,
// every object export writes there is admitted as sent. The stored objects
// equal the client-side plan (plus the VIP, which only the target can
// allocate), and a re-run finds nothing to change, which it would if the
// webhook had mutated what export sent.
func TestWebhookAdmitsExportUnchanged(t *testing.T) {
	cases := []struct {
		args    []string
		ns, svc string
	}{
		{args: []string{"export", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster1"}, ns: "bar", svc: "httpbin"},
		{args: []string{"export", "helloworld", "-n", "hello", "--from", "cluster3", "--to", "cluster1"}, ns: "hello", svc: "helloworld"},
	}
	for _, tc := range cases {
		t.Run(tc.svc, func(t *testing.T) {
			plan := planned(t, tc.args...)
			mustMesh(t, tc.args...)
			seName := builders.ServiceEntryName(tc.svc, tc.ns)
			drName := builders.GlobalDestinationRuleName(tc.svc, tc.ns)
			for key, kind := range map[string]string{
				rules.KindServiceEntry + "/" + tc.ns + "/" + seName:    rules.KindServiceEntry,
				rules.KindDestinationRule + "/" + tc.ns + "/" + drName: rules.KindDestinationRule,
			} {
				want := plan[key]
				if want == nil {
					t.Fatalf("the plan lacks %s; it has %v", key, plan)
				}
				got := mustGet(t, "cluster1", kind, want.GetNamespace(), want.GetName())
				gotSpec := spec(got)
				if kind == rules.KindServiceEntry {
					gotSpec = copySpec(gotSpec)
					vipOf(t, got)
					delete(gotSpec, "addresses")
				}
				if !sameJSON(t, gotSpec, spec(want)) {
					t.Errorf("cluster1 stored %s with spec\n%v\nexport sent\n%v", key, gotSpec, spec(want))
				}
				for k, v := range want.GetLabels() {
					if got.GetLabels()[k] != v {
						t.Errorf("%s label %s = %q, sent %q", key, k, got.GetLabels()[k], v)
					}
				}
				for k, v := range want.GetAnnotations() {
					if got.GetAnnotations()[k] != v {
						t.Errorf("%s annotation %s = %q, sent %q", key, k, got.GetAnnotations()[k], v)
					}
				}
			}
			se := mustGet(t, "cluster1", rules.KindServiceEntry, tc.ns, seName)
			claim := claimOf(t, "cluster1", vipOf(t, se))
			if claim == nil {
				t.Fatalf("no VIPClaim for %s", vipOf(t, se))
			}
			if n, _, _ := unstructured.NestedString(claim.Object, "spec", "serviceEntry", "name"); n != seName {
				t.Errorf("VIPClaim %s is held by %q, want %s", claim.GetName(), n, seName)
			}
			out, _ := mustMesh(t, tc.args...)
			if strings.Contains(out, "configured") || strings.Contains(out, "created") {
				t.Errorf("re-run after admission found changes:\n%s", out)
			}
			mustMesh(t, append([]string{"unexport"}, tc.args[1:]...)...)
			mustBeGone(t, "cluster1", rules.KindServiceEntry, tc.ns, seName)
		})
	}
}

// sameJSON compares as JSON, where the stored object's integers and the
// decoded plan's floats are the same numbers.
func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

func copySpec(s map[string]any) map[string]any {
	out := make(map[string]any, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out
}
