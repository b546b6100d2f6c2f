package vip

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// Cache is an in-memory view of a cluster's claims, fed by a watch: which
// address is held by whom, and what each owner holds. Claims uses it (see
// WithCache) to skip taken candidates and to find an owner's claim without a
// label scan. It keeps a few dozen bytes per claim, not the objects.
type Cache struct {
	informer cache.SharedIndexInformer
	handler  cache.ResourceEventHandlerRegistration

	mu      sync.RWMutex
	byAddr  map[netip.Addr]Owner
	byOwner map[string][]netip.Addr // "namespace/name" → addresses; almost always one
}

// NewCache returns a cache of the claims behind client; Start runs it.
func NewCache(client dynamic.Interface) *Cache {
	c := &Cache{byAddr: map[netip.Addr]Owner{}, byOwner: map[string][]netip.Addr{}}
	// No periodic resync: the watch keeps the view current and a resync
	// would only replay it.
	c.informer = dynamicinformer.NewFilteredDynamicInformer(client, GVR, "", 0, cache.Indexers{}, nil).Informer()
	// Store a compact entry instead of the whole object: at 100k claims the
	// unstructured maps alone would cost hundreds of MiB.
	_ = c.informer.SetTransform(compact)
	c.handler, _ = c.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.apply(obj, false) },
		UpdateFunc: func(_, obj any) { c.apply(obj, false) },
		DeleteFunc: func(obj any) { c.apply(obj, true) },
	})
	return c
}

// Start runs the watch until ctx ends. It implements controller-runtime's
// manager.Runnable; every replica needs it, leader or not.
func (c *Cache) Start(ctx context.Context) error {
	c.informer.Run(ctx.Done())
	return nil
}

// NeedLeaderElection is false: every replica allocates.
func (c *Cache) NeedLeaderElection() bool { return false }

// WaitForSync blocks until the initial list is in the cache.
func (c *Cache) WaitForSync(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), c.HasSynced) {
		return fmt.Errorf("VIPClaim cache did not sync: %w", context.Cause(ctx))
	}
	return nil
}

// HasSynced reports whether the initial list is in the cache: delivered to
// its handler, not merely received by the informer.
func (c *Cache) HasSynced() bool { return c.handler != nil && c.handler.HasSynced() }

// Len is the number of claims known.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.byAddr)
}

// Holder returns the known holder of addr.
func (c *Cache) Holder(addr netip.Addr) (Owner, bool) {
	if c == nil {
		return Owner{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	o, ok := c.byAddr[addr]
	return o, ok
}

// HeldBy returns the known claims of o, in address order.
func (c *Cache) HeldBy(o Owner) []Held {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []Held
	for _, a := range c.byOwner[o.String()] {
		out = append(out, Held{Addr: a, Host: c.byAddr[a].Host})
	}
	sortHeld(out)
	return out
}

func sortHeld(h []Held) {
	slices.SortFunc(h, func(a, b Held) int { return a.Addr.Compare(b.Addr) })
}

// observe records what this process just learnt from the API server, ahead
// of the watch event.
func (c *Cache) observe(addr netip.Addr, o Owner) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set(addr, o)
}

func (c *Cache) forgetAddr(addr netip.Addr) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unset(addr)
}

func (c *Cache) set(addr netip.Addr, o Owner) {
	if old, ok := c.byAddr[addr]; ok && !old.Same(o) {
		c.unset(addr)
	}
	c.byAddr[addr] = o
	k := o.String()
	if !slices.Contains(c.byOwner[k], addr) {
		c.byOwner[k] = append(c.byOwner[k], addr)
	}
}

func (c *Cache) unset(addr netip.Addr) {
	old, ok := c.byAddr[addr]
	if !ok {
		return
	}
	delete(c.byAddr, addr)
	k := old.String()
	rest := slices.DeleteFunc(c.byOwner[k], func(a netip.Addr) bool { return a == addr })
	if len(rest) == 0 {
		delete(c.byOwner, k)
		return
	}
	c.byOwner[k] = rest
}

func (c *Cache) apply(obj any, deleted bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, deleted = d.Obj, true
	}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		obj, _ = compact(u)
	}
	e, ok := obj.(*entry)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if deleted {
		if cur, ok := c.byAddr[e.addr]; ok && cur.Same(e.owner) {
			c.unset(e.addr)
		}
		return
	}
	c.set(e.addr, e.owner)
}

// entry is what the informer stores per claim.
type entry struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	addr  netip.Addr
	owner Owner
}

func (e *entry) DeepCopyObject() runtime.Object {
	c := *e
	return &c
}

// compact turns a claim object into an entry; anything else (and claims
// that do not parse) passes through untouched and is ignored by apply.
func compact(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	a, o, err := claimOf(u)
	if err != nil {
		return obj, nil //nolint:nilerr // a malformed claim must not stop the watch
	}
	return &entry{
		ObjectMeta: metav1.ObjectMeta{Name: u.GetName(), ResourceVersion: u.GetResourceVersion(), UID: u.GetUID()},
		addr:       a,
		owner:      o,
	}, nil
}
