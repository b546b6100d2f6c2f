package vip

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

func startCache(t *testing.T, c *Cache) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = c.Start(ctx) }()
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if err := c.WaitForSync(sctx); err != nil {
		t.Fatal(err)
	}
}

// caches builds each kind of cache over one dynamic fake.
var caches = map[string]func(f *dynamicfake.FakeDynamicClient) *Cache{
	"objects":  func(f *dynamicfake.FakeDynamicClient) *Cache { return NewCache(f) },
	"metadata": func(f *dynamicfake.FakeDynamicClient) *Cache { return NewMetadataCache(metaOf(f)) },
}

func TestAllocateWithCache(t *testing.T) {
	space := mustSpace(t, "240.0.0.0/28")
	first := space.Candidate(foo.Host)
	second, third := space.Next(first), space.Next(space.Next(first))
	tests := map[string]struct {
		existing   []runtime.Object
		want       netip.Addr
		wantCalls  int // API calls of Allocate
		wantWrites int
	}{
		"taken candidates are skipped without a call": {
			existing: []runtime.Object{claimObj(first.String(), bar), claimObj(second.String(), bar)},
			want:     third, wantCalls: 1, wantWrites: 1,
		},
		"the owner's claim is found without a label scan": {
			existing: []runtime.Object{claimObj(second.String(), foo)},
			want:     second, wantCalls: 1, wantWrites: 0,
		},
	}
	for kind, newCache := range caches {
		for name, tc := range tests {
			t.Run(kind+"/"+name, func(t *testing.T) {
				f := newFake(tc.existing...)
				cache := newCache(f)
				startCache(t, cache)
				if cache.Len() != len(tc.existing) {
					t.Fatalf("cache holds %d claims, want %d", cache.Len(), len(tc.existing))
				}
				f.ClearActions()
				got, err := NewClaims(f, space, WithCache(cache)).Allocate(context.Background(), foo, false)
				if err != nil || got != tc.want {
					t.Fatalf("Allocate = %v, %v; want %v", got, err, tc.want)
				}
				if n := len(f.Actions()); n != tc.wantCalls {
					t.Errorf("Allocate made %d API calls, want %d: %v", n, tc.wantCalls, f.Actions())
				}
				if n := writes(f); n != tc.wantWrites {
					t.Errorf("Allocate made %d writes, want %d", n, tc.wantWrites)
				}
				if h, ok := cache.Holder(got); !ok || !h.Same(foo) {
					t.Errorf("cache.Holder(%s) = %v, %v right after the allocation; want %v", got, h, ok, foo)
				}
			})
		}
	}
}

func TestAllocateBeforeTheCacheSynced(t *testing.T) {
	space := mustSpace(t, "240.0.0.0/28")
	second := space.Next(space.Candidate(foo.Host))
	f := newFake(claimObj(second.String(), foo))
	got, err := NewClaims(f, space, WithCache(NewCache(f))).Allocate(context.Background(), foo, false)
	if err != nil || got != second {
		t.Fatalf("Allocate with a cache not yet synced = %v, %v; want the claim foo holds, %v", got, err, second)
	}
	if n := writes(f); n != 0 {
		t.Errorf("Allocate made %d writes, want none: %v", n, f.Actions())
	}
}

func TestCacheFollowsTheWatch(t *testing.T) {
	for kind, newCache := range caches {
		t.Run(kind, func(t *testing.T) { testCacheFollowsTheWatch(t, newCache) })
	}
}

func testCacheFollowsTheWatch(t *testing.T, newCache func(*dynamicfake.FakeDynamicClient) *Cache) {
	f := newFake(claimObj("240.0.0.1", foo))
	cache := newCache(f)
	startCache(t, cache)
	c := NewClaims(f, rules.DefaultVIPSpace())
	ctx := context.Background()
	if err := c.Claim(ctx, netip.MustParseAddr("240.0.0.2"), bar, false); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(ctx, netip.MustParseAddr("240.0.0.1"), foo); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, has1 := cache.Holder(netip.MustParseAddr("240.0.0.1"))
		h2, has2 := cache.Holder(netip.MustParseAddr("240.0.0.2"))
		if !has1 && has2 && h2.Same(bar) && len(cache.HeldBy(foo)) == 0 && len(cache.HeldBy(bar)) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache did not follow a create and a delete made by another client: 240.0.0.1 held %v, 240.0.0.2 held by %v %v", has1, h2, has2)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCacheApply(t *testing.T) {
	a1, a2 := netip.MustParseAddr("240.0.0.1"), netip.MustParseAddr("240.0.0.2")
	tests := map[string]struct {
		events    []any // objects, added unless wrapped in deleted{}
		wantAddrs map[netip.Addr]string
	}{
		"add": {
			events:    []any{claimObj("240.0.0.1", foo)},
			wantAddrs: map[netip.Addr]string{a1: foo.String()},
		},
		"delete": {
			events:    []any{claimObj("240.0.0.1", foo), deleted{claimObj("240.0.0.1", foo)}},
			wantAddrs: map[netip.Addr]string{},
		},
		"delete seen late as DeletedFinalStateUnknown": {
			events:    []any{claimObj("240.0.0.1", foo), deleted{cache.DeletedFinalStateUnknown{Key: "240.0.0.1", Obj: claimObj("240.0.0.1", foo)}}},
			wantAddrs: map[netip.Addr]string{},
		},
		"a stale delete of a previous holder keeps the new one": {
			events:    []any{claimObj("240.0.0.1", foo), claimObj("240.0.0.1", bar), deleted{claimObj("240.0.0.1", foo)}},
			wantAddrs: map[netip.Addr]string{a1: bar.String()},
		},
		"a malformed claim is ignored": {
			events:    []any{&unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "x"}}}, claimObj("240.0.0.2", bar)},
			wantAddrs: map[netip.Addr]string{a2: bar.String()},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := NewCache(newFake())
			for _, e := range tc.events {
				if d, ok := e.(deleted); ok {
					c.apply(d.obj, true)
					continue
				}
				obj, _ := compact(e)
				c.apply(obj, false)
			}
			got := map[netip.Addr]string{}
			for k := range c.byAddr {
				a := addrOf(k)
				h, _ := c.Holder(a)
				got[a] = h.String()
			}
			if !maps.Equal(got, tc.wantAddrs) {
				t.Errorf("holders = %v, want %v", got, tc.wantAddrs)
			}
			owners := len(c.byOwner)
			for _, as := range c.more {
				owners += len(as)
			}
			if owners != len(tc.wantAddrs) {
				t.Errorf("owner index holds %d addresses, want %d", owners, len(tc.wantAddrs))
			}
		})
	}
}

type deleted struct{ obj any }

// Claims written before the owner annotations name the owner in the spec
// and by hashed label only: the metadata cache still knows them taken, and
// whose they are by hash.
func TestMetadataCacheUnderstandsOlderClaims(t *testing.T) {
	space := mustSpace(t, "240.0.0.0/28")
	first := space.Candidate(foo.Host)
	second, third := space.Next(first), space.Next(space.Next(first))
	f := newFake(legacyClaim(first.String(), bar), legacyClaim(second.String(), foo))
	c := NewMetadataCache(metaOf(f))
	startCache(t, c)
	if h, ok := c.Holder(first); !ok || h.Namespace != bar.Namespace || h.Same(bar) {
		t.Errorf("Holder(%s) = %+v, %v; want taken, known by namespace %q only", first, h, ok, bar.Namespace)
	}
	if got := c.HeldBy(foo); len(got) != 1 || got[0].Addr != second || got[0].Host != "" {
		t.Errorf("HeldBy(foo) = %v; want %s without a host", got, second)
	}
	if taken, byFoo, _ := c.holds(second, sumOf(foo)); !taken || !byFoo {
		t.Errorf("holds(%s, foo) = %v, %v; want taken by foo", second, taken, byFoo)
	}
	ctx := context.Background()
	f.ClearActions()
	got, err := NewClaims(f, space, WithCache(c)).Allocate(ctx, foo, false)
	if err != nil || got != second {
		t.Fatalf("Allocate(foo) = %v, %v; want the claim foo holds, %s", got, err, second)
	}
	if n := writes(f); n != 0 {
		t.Errorf("Allocate(foo) made %d writes, want none: %v", n, f.Actions())
	}
	// Another owner whose candidates start at foo's skips both without a call.
	other := Owner{Namespace: "x", Name: "y", Host: foo.Host}
	f.ClearActions()
	got, err = NewClaims(f, space, WithCache(c)).Allocate(ctx, other, false)
	if err != nil || got != third {
		t.Fatalf("Allocate(%v) = %v, %v; want %s", other, got, err, third)
	}
	if n := len(f.Actions()); n != 1 {
		t.Errorf("Allocate(%v) made %d API calls, want 1 (the create): %v", other, n, f.Actions())
	}
}

func TestCacheKeepsSeveralClaimsOfAnOwner(t *testing.T) {
	c := NewCache(newFake())
	for _, a := range []string{"240.0.0.3", "240.0.0.1", "240.0.0.2"} {
		obj, _ := compact(claimObj(a, foo))
		c.apply(obj, false)
	}
	heldBy := func() (out []string) {
		for _, h := range c.HeldBy(foo) {
			out = append(out, h.Addr.String())
		}
		return out
	}
	if got := heldBy(); !slices.Equal(got, []string{"240.0.0.1", "240.0.0.2", "240.0.0.3"}) {
		t.Fatalf("HeldBy(foo) = %v, want all three in address order", got)
	}
	for _, step := range []struct{ release, want []string }{
		{[]string{"240.0.0.3"}, []string{"240.0.0.1", "240.0.0.2"}}, // the first one indexed
		{[]string{"240.0.0.2"}, []string{"240.0.0.1"}},
		{[]string{"240.0.0.1"}, nil},
	} {
		for _, a := range step.release {
			c.apply(claimObj(a, foo), true)
		}
		if got := heldBy(); !slices.Equal(got, step.want) {
			t.Errorf("after releasing %v, HeldBy(foo) = %v, want %v", step.release, got, step.want)
		}
	}
	if len(c.byAddr)+len(c.byOwner)+len(c.more) != 0 {
		t.Errorf("indexes not empty after every claim went: %d %d %d", len(c.byAddr), len(c.byOwner), len(c.more))
	}
}
