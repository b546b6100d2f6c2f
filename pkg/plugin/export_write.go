package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// Dry-run strategies, as kubectl spells them.
const (
	DryRunNone   = "none"
	DryRunClient = "client"
	DryRunServer = "server"
)

// dryRunSuffix is what the table adds to an action under --dry-run.
func dryRunSuffix(mode string) string {
	switch mode {
	case DryRunClient:
		return " (dry run)"
	case DryRunServer:
		return " (server dry run)"
	}
	return ""
}

func validateDryRun(s string) error {
	switch s {
	case DryRunNone, DryRunClient, DryRunServer:
		return nil
	}
	return fmt.Errorf("--dry-run %q is not supported; use none, client or server", s)
}

// maxAttempts bounds the read-modify-write retries of one object when other
// writers keep changing it.
const maxAttempts = 5

// errNotManaged is returned for objects kubectl-mesh did not write: they
// are never changed or deleted.
var errNotManaged = errors.New("not managed by kubectl-mesh")

// writer writes kubectl-mesh's objects into one cluster. Creates are POSTs,
// so that two exports creating the same entry at once cannot overwrite each
// other (the second gets AlreadyExists and merges); updates are server-side
// applies with field manager kubectl-mesh that carry the resourceVersion
// they were computed from (optimistic concurrency: a concurrent change is a
// Conflict and the caller merges again). Updates force ownership of the
// fields kubectl-mesh sets, and only on objects labelled as managed by it:
// those fields are kubectl-mesh's to converge.
type writer struct {
	dyn    dynamic.Interface
	dryRun bool // server-side dry run
}

func (w writer) dryRunOpt() []string {
	if w.dryRun {
		return []string{metav1.DryRunAll}
	}
	return nil
}

func (w writer) get(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error) {
	u, err := w.dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return u, err
}

// put makes desired true: create when existing is nil, nothing when it is
// unchanged, else an apply preconditioned on existing's resourceVersion.
func (w writer) put(ctx context.Context, gvr schema.GroupVersionResource, existing, desired *unstructured.Unstructured) (*unstructured.Unstructured, cli.Action, error) {
	res := w.dyn.Resource(gvr).Namespace(desired.GetNamespace())
	switch {
	case existing == nil:
		u, err := res.Create(ctx, desired, metav1.CreateOptions{FieldManager: rules.FieldManager, DryRun: w.dryRunOpt()})
		return u, cli.Created, err
	case !builders.IsManaged(existing):
		return nil, cli.Skipped, errNotManaged
	case builders.Unchanged(existing, desired):
		return existing, cli.Unchanged, nil
	}
	apply := desired.DeepCopy()
	apply.SetResourceVersion(existing.GetResourceVersion())
	u, err := res.Apply(ctx, desired.GetName(), apply, metav1.ApplyOptions{FieldManager: rules.FieldManager, Force: true, DryRun: w.dryRunOpt()})
	return u, cli.Configured, err
}

// remove deletes obj if it is still the version that was read.
func (w writer) remove(ctx context.Context, gvr schema.GroupVersionResource, obj *unstructured.Unstructured) error {
	uid, rv := obj.GetUID(), obj.GetResourceVersion()
	err := w.dyn.Resource(gvr).Namespace(obj.GetNamespace()).Delete(ctx, obj.GetName(), metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
		DryRun:        w.dryRunOpt(),
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// retryable says whether a write lost a race with another writer and should
// be recomputed from a fresh read.
func retryable(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
}

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

// restConfigFor returns the client configuration of a kubeconfig context
// for the export commands: a higher client-side rate limit than kubectl's
// default, since one run writes a few objects per service and cluster, and
// an optional transport wrapper (request counting in benchmarks).
func restConfigFor(f cli.Factory, context string, wrap func(rest.Config) rest.Config) (string, *rest.Config, error) {
	if context == "" {
		c, err := f.CurrentContext()
		if err != nil {
			return "", nil, err
		}
		context = c
	}
	cfg, err := f.RESTConfig(context)
	if err != nil {
		return context, nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 500, 1000
	if wrap != nil {
		c := wrap(*cfg)
		cfg = &c
	}
	return context, cfg, nil
}
