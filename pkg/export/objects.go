package export

import (
	"context"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// listByName lists a kind in a namespace ("" = all) into a map keyed by
// namespace/name: one request for all the services of a run.
func listByName(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns string) (map[string]*unstructured.Unstructured, error) {
	l, err := dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make(map[string]*unstructured.Unstructured, len(l.Items))
	for i := range l.Items {
		out[l.Items[i].GetNamespace()+"/"+l.Items[i].GetName()] = &l.Items[i]
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// applyable strips the server-owned fields of an object read from the API
// so that it can be applied back.
func applyable(u *unstructured.Unstructured) *unstructured.Unstructured {
	out := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": u.GetAPIVersion(),
		"kind":       u.GetKind(),
		"metadata":   map[string]any{},
		"spec":       u.Object["spec"],
	}}
	out.SetName(u.GetName())
	out.SetNamespace(u.GetNamespace())
	out.SetLabels(u.GetLabels())
	out.SetAnnotations(u.GetAnnotations())
	return out
}
