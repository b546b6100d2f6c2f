package clitest

import (
	"encoding/json"
	"fmt"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	kubescheme "k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
)

// serve makes the two fakes answer as one API server where the commands
// rely on it. A reactor added by a test later runs before these.
func (c *Cluster) serve() {
	c.KubeFake.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if len(DryRunOf(a)) > 0 {
			return c.answerDryRun(a, false)
		}
		return false, nil, nil
	})
	c.DynamicFake.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if len(DryRunOf(a)) > 0 {
			return c.answerDryRun(a, true)
		}
		if p, ok := a.(k8stesting.PatchActionImpl); ok && p.GetPatchType() == types.ApplyPatchType {
			return c.apply(p)
		}
		if gvk, ok := kubernetesKind(a.GetResource()); ok {
			return c.serveShared(a, gvk)
		}
		return false, nil, nil
	})
}

// answerDryRun answers a write marked dryRun=All with what it would store,
// or the error it would meet, and stores nothing.
func (c *Cluster) answerDryRun(a k8stesting.Action, dynamic bool) (bool, runtime.Object, error) {
	gvr, ns := a.GetResource(), a.GetNamespace()
	current := func(name string) (runtime.Object, error) {
		if dynamic {
			return c.Stored(gvr, ns, name)
		}
		return c.KubeFake.Tracker().Get(gvr, ns, name)
	}
	switch a := a.(type) {
	case k8stesting.CreateActionImpl:
		if m, err := meta.Accessor(a.GetObject()); err == nil && a.GetSubresource() == "" && m.GetName() != "" {
			if _, err := current(m.GetName()); err == nil {
				return true, nil, apierrors.NewAlreadyExists(gvr.GroupResource(), m.GetName())
			}
		}
		return true, a.GetObject(), nil
	case k8stesting.UpdateActionImpl:
		if m, err := meta.Accessor(a.GetObject()); err == nil {
			if _, err := current(m.GetName()); err != nil {
				return true, nil, err
			}
		}
		return true, a.GetObject(), nil
	case k8stesting.PatchActionImpl:
		if a.GetPatchType() == types.ApplyPatchType {
			u := &unstructured.Unstructured{}
			return true, u, json.Unmarshal(a.GetPatch(), &u.Object)
		}
		obj, err := current(a.GetName())
		return true, obj, err
	case k8stesting.DeleteActionImpl:
		_, err := current(a.GetName())
		return true, nil, err
	}
	return true, nil, nil
}

// apply answers a server-side apply as a create, or a replace of the
// whole object: the fakes have no field management. The object gets a new
// resourceVersion, as on every write the API server stores.
func (c *Cluster) apply(p k8stesting.PatchActionImpl) (bool, runtime.Object, error) {
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal(p.GetPatch(), &u.Object); err != nil {
		return true, nil, err
	}
	u.SetResourceVersion(strconv.FormatInt(c.rv.Add(1), 10))
	old, err := c.Stored(p.GetResource(), p.GetNamespace(), p.GetName())
	switch {
	case apierrors.IsNotFound(err):
		return true, u, c.put(p.GetResource(), u, true)
	case err != nil:
		return true, nil, err
	}
	u.SetUID(old.GetUID())
	return true, u, c.put(p.GetResource(), u, false)
}

// serveShared serves a dynamic request for a Kubernetes kind from the
// typed fake's store, converting on the way in and out.
func (c *Cluster) serveShared(a k8stesting.Action, gvk schema.GroupVersionKind) (bool, runtime.Object, error) {
	var err error
	switch act := a.(type) {
	case k8stesting.CreateActionImpl:
		act.Object, err = toTyped(act.Object, gvk)
		a = act
	case k8stesting.UpdateActionImpl:
		act.Object, err = toTyped(act.Object, gvk)
		a = act
	}
	if err != nil {
		return true, nil, err
	}
	handled, obj, err := k8stesting.ObjectReaction(c.KubeFake.Tracker())(a)
	if !handled || err != nil || obj == nil {
		return handled, nil, err
	}
	obj, err = toDynamic(obj, gvk)
	return true, obj, err
}

// toTyped converts an object of a Kubernetes kind to its Go type.
func toTyped(obj runtime.Object, gvk schema.GroupVersionKind) (runtime.Object, error) {
	typed, err := kubescheme.Scheme.New(gvk)
	if err != nil {
		return nil, err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, typed); err != nil {
		return nil, fmt.Errorf("clitest: %s: %w", gvk.Kind, err)
	}
	return typed, nil
}

// toDynamic converts a typed object, or a typed list, of kind gvk to what
// the dynamic client returns.
func toDynamic(obj runtime.Object, gvk schema.GroupVersionKind) (runtime.Object, error) {
	if !meta.IsListType(obj) {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{Object: m}
		u.SetGroupVersionKind(gvk)
		return u, nil
	}
	items, err := meta.ExtractList(obj)
	if err != nil {
		return nil, err
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if l, err := meta.ListAccessor(obj); err == nil {
		list.SetResourceVersion(l.GetResourceVersion())
	}
	for _, item := range items {
		u, err := toDynamic(item, gvk)
		if err != nil {
			return nil, err
		}
		list.Items = append(list.Items, *u.(*unstructured.Unstructured))
	}
	return list, nil
}
