package vip

import (
	"context"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

func TestReleaseOwned(t *testing.T) {
	withUID := func(o Owner, uid string) Owner { o.UID = uid; return o }
	existing := func() []runtime.Object {
		return []runtime.Object{
			claimObj("240.0.0.1", withUID(foo, "u1")),
			claimObj("240.0.0.2", foo),                // admitted before the entry had a UID
			claimObj("240.0.0.3", withUID(foo, "u2")), // a newer foo/httpbin-bar
			claimObj("240.0.0.4", withUID(bar, "u1")),
		}
	}
	// changeOnFirstDelete changes a claim right before its first delete
	// reaches the API server, as a concurrent writer would.
	changeOnFirstDelete := func(addr, uid string) func(*dynamicfake.FakeDynamicClient) {
		return func(f *dynamicfake.FakeDynamicClient) {
			done := false
			f.PrependReactor("delete", Resource, func(a clienttesting.Action) (bool, runtime.Object, error) {
				if done || a.(clienttesting.DeleteAction).GetName() != addr {
					return false, nil, nil
				}
				done = true
				obj, err := f.Tracker().Get(GVR, "", addr)
				if err != nil {
					return true, nil, err
				}
				u := obj.(*unstructured.Unstructured).DeepCopy()
				if uid != "" {
					_ = unstructured.SetNestedField(u.Object, uid, "spec", "serviceEntry", "uid")
				}
				u.SetResourceVersion("changed")
				return false, nil, f.Tracker().Update(GVR, u, "")
			})
		}
	}
	tests := map[string]struct {
		owner        Owner
		dryRun       bool
		cache        bool
		setup        func(*dynamicfake.FakeDynamicClient)
		wantReleased []string
		wantLeft     []string
	}{
		"the entry's claims and those without a UID": {
			owner:        withUID(foo, "u1"),
			wantReleased: []string{"240.0.0.1", "240.0.0.2"},
			wantLeft:     []string{"240.0.0.3", "240.0.0.4"},
		},
		"found through a synced cache": {
			owner: withUID(foo, "u1"), cache: true,
			wantReleased: []string{"240.0.0.1", "240.0.0.2"},
			wantLeft:     []string{"240.0.0.3", "240.0.0.4"},
		},
		"dry run deletes nothing": {
			owner: withUID(foo, "u1"), dryRun: true,
			wantReleased: []string{"240.0.0.1", "240.0.0.2"},
			wantLeft:     []string{"240.0.0.1", "240.0.0.2", "240.0.0.3", "240.0.0.4"},
		},
		"an owner without a UID releases the claims without one": {
			owner:        foo,
			wantReleased: []string{"240.0.0.2"},
			wantLeft:     []string{"240.0.0.1", "240.0.0.3", "240.0.0.4"},
		},
		"a claim changed since it was read is judged again: still the entry's": {
			owner: withUID(foo, "u1"), setup: changeOnFirstDelete("240.0.0.2", "u1"),
			wantReleased: []string{"240.0.0.1", "240.0.0.2"},
			wantLeft:     []string{"240.0.0.3", "240.0.0.4"},
		},
		"a claim changed since it was read is judged again: now a newer entry's": {
			owner: withUID(foo, "u1"), setup: changeOnFirstDelete("240.0.0.2", "u3"),
			wantReleased: []string{"240.0.0.1"},
			wantLeft:     []string{"240.0.0.2", "240.0.0.3", "240.0.0.4"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := strict(newFake(existing()...), clocktesting.NewFakeClock(epoch))
			if tc.setup != nil {
				tc.setup(f)
			}
			var opts []Option
			if tc.cache {
				c := NewMetadataCache(metaOf(f))
				startCache(t, c)
				opts = append(opts, WithCache(c))
			}
			f.ClearActions()
			released, err := NewClaims(f, rules.DefaultVIPSpace(), opts...).ReleaseOwned(context.Background(), tc.owner, tc.dryRun)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range released {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tc.wantReleased) {
				t.Errorf("ReleaseOwned(%+v, dryRun %v) released %v, want %v", tc.owner, tc.dryRun, got, tc.wantReleased)
			}
			var left []string
			for a := range holders(t, f) {
				left = append(left, a)
			}
			slices.Sort(left)
			if !slices.Equal(left, tc.wantLeft) {
				t.Errorf("claims left = %v, want %v", left, tc.wantLeft)
			}
			if tc.dryRun && writes(f) != 0 {
				t.Errorf("dry run wrote: %v", f.Actions())
			}
			for _, a := range f.Actions() {
				if d, ok := a.(clienttesting.DeleteAction); ok {
					if p := d.GetDeleteOptions().Preconditions; p == nil || p.UID == nil || p.ResourceVersion == nil {
						t.Errorf("delete of %s without UID and resourceVersion preconditions", d.GetName())
					}
				}
			}
		})
	}
}

func TestReleaseOwnedRejectsIncompleteOwner(t *testing.T) {
	if _, err := NewClaims(newFake(), rules.DefaultVIPSpace()).ReleaseOwned(context.Background(), Owner{Namespace: "foo"}, false); err == nil {
		t.Error("ReleaseOwned of an owner without a name succeeded")
	}
}
