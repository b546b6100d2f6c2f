package vip

import (
	"context"
	"errors"
	"strconv"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/metadata"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/utils/clock"
)

// strict makes a fake behave like the API server where these tests depend
// on it: a created claim gets a UID, a resourceVersion and a
// creationTimestamp (from clk); an update must carry the current
// resourceVersion and gets a new one; a delete honours its UID and
// resourceVersion preconditions. The plain fake does none of these.
func strict(f *dynamicfake.FakeDynamicClient, clk clock.PassiveClock) *dynamicfake.FakeDynamicClient {
	var mu sync.Mutex
	rv := 1000
	nextRV := func() string {
		mu.Lock()
		defer mu.Unlock()
		rv++
		return strconv.Itoa(rv)
	}
	tr := f.Tracker()
	current := func(name string) (metav1.Object, error) {
		obj, err := tr.Get(GVR, "", name)
		if err != nil {
			return nil, err
		}
		return meta.Accessor(obj)
	}
	f.PrependReactor("create", Resource, func(a clienttesting.Action) (bool, runtime.Object, error) {
		u := a.(clienttesting.CreateAction).GetObject().(*unstructured.Unstructured).DeepCopy()
		u.SetResourceVersion(nextRV())
		u.SetUID(types.UID("uid-" + u.GetName() + "-" + u.GetResourceVersion()))
		u.SetCreationTimestamp(metav1.NewTime(clk.Now()))
		if err := tr.Create(GVR, u, ""); err != nil {
			return true, nil, err
		}
		return true, u, nil
	})
	f.PrependReactor("update", Resource, func(a clienttesting.Action) (bool, runtime.Object, error) {
		u := a.(clienttesting.UpdateAction).GetObject().(*unstructured.Unstructured).DeepCopy()
		cur, err := current(u.GetName())
		if err != nil {
			return true, nil, err
		}
		if u.GetResourceVersion() != cur.GetResourceVersion() {
			return true, nil, apierrors.NewConflict(GVR.GroupResource(), u.GetName(), errors.New("the object has been modified"))
		}
		u.SetResourceVersion(nextRV())
		if err := tr.Update(GVR, u, ""); err != nil {
			return true, nil, err
		}
		return true, u, nil
	})
	f.PrependReactor("delete", Resource, func(a clienttesting.Action) (bool, runtime.Object, error) {
		d := a.(clienttesting.DeleteAction)
		p := d.GetDeleteOptions().Preconditions
		if p == nil {
			return false, nil, nil
		}
		cur, err := current(d.GetName())
		if err != nil {
			return true, nil, err
		}
		if p.UID != nil && *p.UID != cur.GetUID() || p.ResourceVersion != nil && *p.ResourceVersion != cur.GetResourceVersion() {
			return true, nil, apierrors.NewConflict(GVR.GroupResource(), d.GetName(), errors.New("precondition failed"))
		}
		return false, nil, nil
	})
	return f
}

// metaOf serves the metadata API from a dynamic fake, so that one fake
// feeds both a metadata cache and Claims (the metadata fake keeps objects
// of its own).
func metaOf(f dynamic.Interface) metadata.Interface { return metaClient{f} }

type metaClient struct{ f dynamic.Interface }

func (m metaClient) Resource(gvr schema.GroupVersionResource) metadata.Getter {
	return metaResource{ri: m.f.Resource(gvr)}
}

// IsWatchListSemanticsUnSupported keeps informers on list and watch, which
// the fakes serve.
func (metaClient) IsWatchListSemanticsUnSupported() bool { return true }

type metaResource struct {
	ri dynamic.NamespaceableResourceInterface
	ns string
}

var errNotFaked = errors.New("not faked")

func (r metaResource) Namespace(ns string) metadata.ResourceInterface {
	r.ns = ns
	return r
}

func (r metaResource) client() dynamic.ResourceInterface {
	if r.ns == "" {
		return r.ri
	}
	return r.ri.Namespace(r.ns)
}

func (r metaResource) Delete(context.Context, string, metav1.DeleteOptions, ...string) error {
	return errNotFaked
}

func (r metaResource) DeleteCollection(context.Context, metav1.DeleteOptions, metav1.ListOptions) error {
	return errNotFaked
}

func (r metaResource) Get(ctx context.Context, name string, opts metav1.GetOptions, sub ...string) (*metav1.PartialObjectMetadata, error) {
	u, err := r.client().Get(ctx, name, opts, sub...)
	if err != nil {
		return nil, err
	}
	return partial(u), nil
}

func (r metaResource) List(ctx context.Context, opts metav1.ListOptions) (*metav1.PartialObjectMetadataList, error) {
	l, err := r.client().List(ctx, opts)
	if err != nil {
		return nil, err
	}
	out := &metav1.PartialObjectMetadataList{}
	out.ResourceVersion = l.GetResourceVersion()
	for i := range l.Items {
		out.Items = append(out.Items, *partial(&l.Items[i]))
	}
	return out, nil
}

func (r metaResource) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	w, err := r.client().Watch(ctx, opts)
	if err != nil {
		return nil, err
	}
	return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
		if u, ok := e.Object.(*unstructured.Unstructured); ok {
			e.Object = partial(u)
		}
		return e, true
	}), nil
}

func (r metaResource) Patch(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) (*metav1.PartialObjectMetadata, error) {
	return nil, errNotFaked
}

func partial(u *unstructured.Unstructured) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: u.GetAPIVersion(), Kind: u.GetKind()},
		ObjectMeta: metav1.ObjectMeta{
			Name: u.GetName(), Namespace: u.GetNamespace(), UID: u.GetUID(), ResourceVersion: u.GetResourceVersion(),
			CreationTimestamp: u.GetCreationTimestamp(), Labels: u.GetLabels(), Annotations: u.GetAnnotations(),
		},
	}
}

// legacyClaim is a claim as versions before the owner annotations wrote it:
// the owner in the spec and the hashed owner label only.
func legacyClaim(addr string, o Owner) *unstructured.Unstructured {
	u := claimObj(addr, o)
	u.SetAnnotations(nil)
	return u
}
