package cli

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// Action is what a write did (or, under a dry run, would do) to one
// object; tables print it.
type Action string

// Actions.
const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
	Deleted    Action = "deleted"
	Failed     Action = "failed"
	Skipped    Action = "skipped"
	NotFound   Action = "not found"
	Planned    Action = "planned"
)

// ErrNotManaged is returned for objects kubectl-mesh did not write: they
// are never changed by force or deleted.
var ErrNotManaged = errors.New("not managed by kubectl-mesh")

// Writer is the one way kubectl mesh writes objects into one cluster,
// honouring --dry-run: a client dry run sends no write (reads still
// happen), a server dry run sends every write with dryRun=All.
//
// Creates are POSTs, so that two runs creating the same object at once
// cannot overwrite each other: the second gets AlreadyExists, reads, and
// merges. Changes are server-side applies with field manager kubectl-mesh.
// Ownership of the fields is forced only on objects labelled as managed by
// kubectl-mesh — those fields are ours to converge; on any other object an
// apply that would take a field from another manager fails with a Conflict
// that names it.
type Writer struct {
	Dynamic dynamic.Interface
	DryRun  DryRun
}

// Resource is the client of gvr in ns ("" for cluster-scoped kinds).
func (w Writer) Resource(gvr schema.GroupVersionResource, ns string) dynamic.ResourceInterface {
	if ns == "" {
		return w.Dynamic.Resource(gvr)
	}
	return w.Dynamic.Resource(gvr).Namespace(ns)
}

// Get reads an object; absent is (nil, nil).
func (w Writer) Get(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error) {
	u, err := w.Resource(gvr, ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return u, err
}

// Put makes desired true given existing, the object as last read (nil:
// absent): a create when it is absent, nothing when it already holds
// desired, else an apply preconditioned on existing's resourceVersion, so
// that a concurrent change is a Conflict (see RetryOnConflict) rather than
// lost. An existing object kubectl-mesh does not manage is refused with
// ErrNotManaged. A client dry run returns desired and the action it would
// take.
func (w Writer) Put(ctx context.Context, gvr schema.GroupVersionResource, existing, desired *unstructured.Unstructured) (*unstructured.Unstructured, Action, error) {
	var action Action
	switch {
	case existing == nil:
		action = Created
	case !rules.IsManaged(existing.GetLabels()):
		return nil, Skipped, ErrNotManaged
	case Holds(existing, desired):
		return existing, Unchanged, nil
	default:
		action = Configured
	}
	if !w.DryRun.Writes() {
		return desired, action, nil
	}
	res := w.Resource(gvr, desired.GetNamespace())
	if existing == nil {
		u, err := res.Create(ctx, desired, metav1.CreateOptions{FieldManager: rules.FieldManager, DryRun: w.DryRun.Options()})
		return u, action, err
	}
	apply := desired.DeepCopy()
	apply.SetResourceVersion(existing.GetResourceVersion())
	u, err := res.Apply(ctx, desired.GetName(), apply, metav1.ApplyOptions{FieldManager: rules.FieldManager, Force: true, DryRun: w.DryRun.Options()})
	return u, action, err
}

// Apply makes obj so with a server-side apply, without a resourceVersion
// precondition: for objects whose every field kubectl-mesh sets in full
// each time. It says whether anything changed. Ownership is forced when the
// object is absent or managed by kubectl-mesh, never otherwise.
func (w Writer) Apply(ctx context.Context, gvr schema.GroupVersionResource, obj runtime.Object) (changed bool, err error) {
	u, err := toUnstructured(obj)
	if err != nil {
		return false, err
	}
	u = u.DeepCopy()
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	before, err := w.Get(ctx, gvr, u.GetNamespace(), u.GetName())
	if err != nil {
		return false, fmt.Errorf("read %s %s: %w", gvr.Resource, Ref(u), err)
	}
	if !w.DryRun.Writes() {
		return before == nil || !Contains(before.Object, u.Object), nil
	}
	force := before == nil || rules.IsManaged(before.GetLabels())
	after, err := w.Resource(gvr, u.GetNamespace()).Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: rules.FieldManager, Force: force, DryRun: w.DryRun.Options()})
	if err != nil {
		return false, fmt.Errorf("apply %s %s: %w", gvr.Resource, Ref(u), err)
	}
	return before == nil || before.GetResourceVersion() != after.GetResourceVersion() || (w.DryRun == DryRunServer && !Contains(before.Object, u.Object)), nil
}

// Delete deletes obj if it is still the version that was read (UID and
// resourceVersion preconditions). Absent is fine; an object kubectl-mesh
// does not manage is refused with ErrNotManaged.
func (w Writer) Delete(ctx context.Context, gvr schema.GroupVersionResource, obj *unstructured.Unstructured) error {
	if !rules.IsManaged(obj.GetLabels()) {
		return fmt.Errorf("%s %s: %w", gvr.Resource, Ref(obj), ErrNotManaged)
	}
	if !w.DryRun.Writes() {
		return nil
	}
	uid, rv := obj.GetUID(), obj.GetResourceVersion()
	pre := &metav1.Preconditions{UID: &uid}
	if rv != "" {
		pre.ResourceVersion = &rv
	}
	err := w.Resource(gvr, obj.GetNamespace()).Delete(ctx, obj.GetName(), metav1.DeleteOptions{Preconditions: pre, DryRun: w.DryRun.Options()})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// DeleteManaged reads and deletes the object ns/name (whichever version it
// is now) and says whether there was one. An object kubectl-mesh does not
// manage is left, with an error that says to delete it by hand.
func (w Writer) DeleteManaged(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) (deleted bool, err error) {
	obj, err := w.Get(ctx, gvr, ns, name)
	if err != nil || obj == nil {
		return false, err
	}
	if !rules.IsManaged(obj.GetLabels()) {
		return false, fmt.Errorf("%s %s is not labelled %s=%s, so kubectl mesh leaves it; delete it by hand if it is no longer needed", gvr.Resource, Ref(obj), rules.ManagedByLabel, rules.ManagedByValue)
	}
	obj.SetResourceVersion("") // whichever version: only the UID must match
	if err := w.Delete(ctx, gvr, obj); err != nil {
		return false, err
	}
	return true, nil
}

// Holds reports whether existing already holds what desired asks for: the
// same spec, and desired's labels and annotations with the same values.
func Holds(existing, desired *unstructured.Unstructured) bool {
	if existing == nil {
		return false
	}
	if !equality.Semantic.DeepEqual(existing.Object["spec"], desired.Object["spec"]) {
		return false
	}
	el, ea := existing.GetLabels(), existing.GetAnnotations()
	for k, v := range desired.GetLabels() {
		if el[k] != v {
			return false
		}
	}
	for k, v := range desired.GetAnnotations() {
		if ea[k] != v {
			return false
		}
	}
	return true
}

// Contains reports whether every field of want is in have: a cheap "would
// apply change anything" for client dry runs.
func Contains(have, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !Contains(h[k], v) {
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
			if !Contains(h[i], w[i]) {
				return false
			}
		}
		return true
	}
	return fmt.Sprint(have) == fmt.Sprint(want)
}

// Ref is namespace/name, or name for cluster-scoped objects.
func Ref(o interface {
	GetNamespace() string
	GetName() string
}) string {
	if o.GetNamespace() == "" {
		return o.GetName()
	}
	return o.GetNamespace() + "/" + o.GetName()
}
