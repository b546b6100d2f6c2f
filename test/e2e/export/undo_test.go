package export

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

var (
	policyGVR  = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"}
	bindingGVR = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"}
)

// refuseEndpointsOf makes cluster refuse every ServiceEntry with an
// endpoint of source, as an admission policy of the target's owners might;
// the returned func lifts it.
func refuseEndpointsOf(t *testing.T, cluster, source string) func() {
	t.Helper()
	ctx := t.Context()
	dyn := theLab.Cluster(cluster).Dynamic
	name := "refuse-" + source
	policy := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"failurePolicy": "Fail",
			"matchConstraints": map[string]any{"resourceRules": []any{map[string]any{
				"apiGroups": []any{"networking.istio.io"}, "apiVersions": []any{"*"},
				"operations": []any{"CREATE", "UPDATE"}, "resources": []any{"serviceentries"},
			}}},
			"validations": []any{map[string]any{
				"expression": "!has(object.spec.endpoints) || object.spec.endpoints.all(e, !has(e.labels) || !('cluster' in e.labels) || e.labels['cluster'] != '" + source + "')",
				"message":    "endpoints of " + source + " are refused here",
			}},
		},
	}}
	binding := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"policyName": name, "validationActions": []any{"Deny"}},
	}}
	if _, err := dyn.Resource(policyGVR).Create(ctx, policy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(bindingGVR).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	lift := func() {
		_ = dyn.Resource(bindingGVR).Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = dyn.Resource(policyGVR).Delete(context.Background(), name, metav1.DeleteOptions{})
	}
	// Policies take effect asynchronously: probe with server dry runs.
	probe := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": rules.IstioAPIVersion, "kind": rules.KindServiceEntry,
		"metadata": map[string]any{"name": "probe", "namespace": "default"},
		"spec": map[string]any{"hosts": []any{"probe.example.com"}, "resolution": "DNS", "location": "MESH_EXTERNAL",
			"ports":     []any{map[string]any{"name": "http", "number": int64(80), "protocol": "HTTP"}},
			"endpoints": []any{map[string]any{"address": "probe.example.com", "labels": map[string]any{"cluster": source}}}},
	}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := dyn.Resource(rules.ServiceEntryGVR).Namespace("default").Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
			return lift
		}
		if time.Now().After(deadline) {
			lift()
			t.Fatalf("the refusing policy never took effect (last answer: %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestUndoWhenTheEntryIsRefused: when a target refuses the ServiceEntry,
// export puts that target's DestinationRule back as it was (deleting it if
// this run created it), so no entry is left without its rule or a rule
// with subsets its entry does not have.
func TestUndoWhenTheEntryIsRefused(t *testing.T) {
	mustMesh(t, "export", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster3")
	defer mesh(t, "unexport", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster3") //nolint:errcheck // cleanup
	before := mustGet(t, "cluster3", rules.KindDestinationRule, "hello", "helloworld-hello-global")
	lift := refuseEndpointsOf(t, "cluster3", "cluster1")
	defer lift()

	// An update refused: the rule's new subset v1 is taken back.
	_, stderr, err := mesh(t, "export", "helloworld", "-n", "hello", "--from", "cluster1", "--to", "cluster3")
	if err == nil || !strings.Contains(stderr, "endpoints of cluster1 are refused here") {
		t.Fatalf("export refused by the target: err = %v, stderr:\n%s", err, stderr)
	}
	after := mustGet(t, "cluster3", rules.KindDestinationRule, "hello", "helloworld-hello-global")
	if !sameJSON(t, spec(after), spec(before)) {
		t.Errorf("after a refused entry update the rule is\n%v\nwant it as before\n%v", spec(after), spec(before))
	}
	if eps := endpoints(mustGet(t, "cluster3", rules.KindServiceEntry, "hello", "helloworld-hello")); len(eps) != 1 || eps["cluster2"] == nil {
		t.Errorf("entry endpoints = %v, want only cluster2's", eps)
	}

	// A creation refused: the rule this run created is deleted again.
	_, _, err = mesh(t, "export", "sleep", "-n", "foo", "--from", "cluster1", "--to", "cluster3")
	if err == nil {
		t.Fatal("export of sleep into a refusing target exited 0")
	}
	mustBeGone(t, "cluster3", rules.KindServiceEntry, "foo", "sleep-foo")
	mustBeGone(t, "cluster3", rules.KindDestinationRule, "foo", "sleep-foo-global")
}
