package webhook

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

func obj(kind, ns, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": kind,
		"metadata": map[string]any{"namespace": ns, "name": name},
		"spec":     spec,
	}}
}

func TestObjectIndexFollowsTheWatch(t *testing.T) {
	se := obj("ServiceEntry", "foo", "httpbin-bar", map[string]any{
		"hosts":     []any{"httpbin.bar.global"},
		"exportTo":  []any{"."},
		"ports":     []any{map[string]any{"name": "http", "number": int64(8000)}},
		"endpoints": []any{map[string]any{"address": "1.2.3.4", "labels": map[string]any{"cluster": "c2"}}},
	})
	dr := obj("DestinationRule", "foo", "httpbin-bar-global", map[string]any{"host": "httpbin.bar.global"})
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		rules.ServiceEntryGVR: "ServiceEntryList", rules.DestinationRuleGVR: "DestinationRuleList",
	}, se, dr)
	x := NewObjectIndex(client)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = x.Start(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !x.Synced() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !x.Synced() {
		t.Fatal("index never synced")
	}
	e := x.Entry("httpbin.bar.global", "foo")
	if e == nil || e.String() != "foo/httpbin-bar" || len(e.Ports) != 1 || e.Ports[0] != 8000 || !e.Selects(map[string]string{"cluster": "c2"}) {
		t.Fatalf("Entry = %+v", e)
	}
	if x.Entry("httpbin.bar.global", "other") != nil {
		t.Error("an entry exported to \".\" is visible from another namespace")
	}
	if !x.HasDestinationRule("httpbin.bar.global", "foo", nil) {
		t.Error("the DestinationRule is not known")
	}
	if err := client.Resource(rules.ServiceEntryGVR).Namespace("foo").Delete(ctx, "httpbin-bar", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for x.Entry("httpbin.bar.global", "foo") != nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(x.Entries("httpbin.bar.global")) != 0 {
		t.Error("a deleted entry is still indexed")
	}
}
