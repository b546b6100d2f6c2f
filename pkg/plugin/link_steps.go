package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// Step results of link and unlink, one line each.
const (
	stepOK      = "ok"
	stepChanged = "changed"
	stepSkipped = "skipped"
	// stepNeeded: the step found something only the user can set; the
	// warning that follows says what.
	stepNeeded = "action needed"
)

// stepLog prints one line per step, and with -o yaml|json the objects that
// are (or would be) written.
type stepLog struct {
	out, objOut io.Writer
	dryRun      string
	output      string
	objects     []runtime.Object
}

func (l *stepLog) line(cluster, result, step, detail string) {
	if result == stepChanged && l.dryRun != "" && l.dryRun != "none" {
		result += " (dry run)"
	}
	fmt.Fprintf(l.out, "%-9s %-20s %-17s %s\n", cluster, step, result, detail)
}

func (l *stepLog) object(obj runtime.Object) {
	if l.output != "" {
		l.objects = append(l.objects, obj.DeepCopyObject())
	}
}

// flush prints the collected objects: a YAML stream, or a JSON List.
func (l *stepLog) flush() error {
	if l.output == "" || len(l.objects) == 0 {
		return nil
	}
	if l.output == "json" {
		list := map[string]any{"apiVersion": "v1", "kind": "List", "items": l.objects}
		b, err := json.MarshalIndent(list, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(l.objOut, string(b))
		return err
	}
	for i, o := range l.objects {
		b, err := yaml.Marshal(o)
		if err != nil {
			return err
		}
		if i > 0 {
			if _, err := io.WriteString(l.objOut, "---\n"); err != nil {
				return err
			}
		}
		if _, err := l.objOut.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func validateLinkOutput(dryRun, output string) error {
	switch dryRun {
	case "", "none", "client", "server":
	default:
		return fmt.Errorf("--dry-run %q is not supported; use none, client or server", dryRun)
	}
	switch output {
	case "", "yaml", "json":
	default:
		return fmt.Errorf("--output %q is not supported; use -o yaml or -o json, or leave it out", output)
	}
	return nil
}

// applier writes one cluster's objects with server-side apply (field
// manager kubectl-mesh), honouring --dry-run.
type applier struct {
	dyn    dynamic.Interface
	dryRun string
}

func (a applier) writes() bool { return a.dryRun != "client" }

func (a applier) dryRunOpt() []string {
	if a.dryRun == "server" {
		return []string{metav1.DryRunAll}
	}
	return nil
}

// apply makes obj so and says whether that changed anything: the object
// is unchanged when its resourceVersion stays the same.
func (a applier) apply(ctx context.Context, gvr schema.GroupVersionResource, obj runtime.Object) (changed bool, err error) {
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return false, err
	}
	u := &unstructured.Unstructured{Object: raw}
	delete(u.Object["metadata"].(map[string]any), "creationTimestamp")
	ri := a.resource(gvr, u.GetNamespace())
	before, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		before = nil
	case err != nil:
		return false, fmt.Errorf("read %s %s: %w", gvr.Resource, ref(u), err)
	}
	if !a.writes() {
		return before == nil || !contains(before.Object, u.Object), nil
	}
	after, err := ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: rules.FieldManager, Force: true, DryRun: a.dryRunOpt()})
	if err != nil {
		return false, fmt.Errorf("apply %s %s: %w", gvr.Resource, ref(u), err)
	}
	return before == nil || before.GetResourceVersion() != after.GetResourceVersion() || (a.dryRun == "server" && !contains(before.Object, u.Object)), nil
}

// remove deletes a managed object; absent is fine.
func (a applier) remove(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) (deleted bool, err error) {
	ri := a.resource(gvr, ns)
	obj, err := ri.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if obj.GetLabels()[rules.ManagedByLabel] != rules.ManagedByValue {
		return false, fmt.Errorf("%s %s is not labelled %s=%s, so kubectl mesh leaves it; delete it by hand if it is no longer needed", gvr.Resource, ref(obj), rules.ManagedByLabel, rules.ManagedByValue)
	}
	if !a.writes() {
		return true, nil
	}
	uid := obj.GetUID()
	err = ri.Delete(ctx, name, metav1.DeleteOptions{DryRun: a.dryRunOpt(), Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

func (a applier) resource(gvr schema.GroupVersionResource, ns string) dynamic.ResourceInterface {
	if ns == "" {
		return a.dyn.Resource(gvr)
	}
	return a.dyn.Resource(gvr).Namespace(ns)
}

func ref(u interface {
	GetNamespace() string
	GetName() string
}) string {
	if u.GetNamespace() == "" {
		return u.GetName()
	}
	return u.GetNamespace() + "/" + u.GetName()
}

// contains reports whether every field of want is in have: a cheap "would
// apply change anything" for client dry runs.
func contains(have, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !contains(h[k], v) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !contains(h[i], w[i]) {
				return false
			}
		}
		return true
	}
	return fmt.Sprint(have) == fmt.Sprint(want)
}

var (
	gvrConfigMap          = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gvrNamespace          = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	gvrSecret             = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	gvrServiceAccount     = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
	gvrClusterRole        = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}
	gvrClusterRoleBinding = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}
)
