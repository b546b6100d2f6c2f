package vip

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// Cache is an in-memory view of a cluster's claims, fed by a watch: which
// address is held by whom, and what each owner holds. Claims uses it (see
// WithCache) to skip taken candidates and to find an owner's claim without a
// label scan. It keeps a compact entry per claim, not the objects.
type Cache struct {
	informer cache.SharedIndexInformer
	handler  cache.ResourceEventHandlerRegistration

	// The indexes are keyed by IPv4 addresses as numbers (VIPs are class E
	// addresses; a claim named otherwise is ignored) and hold an owner's
	// first address inline: at 100k claims every word per claim counts.
	mu      sync.RWMutex
	byAddr  map[uint32]*entry
	byOwner map[ownerSum]uint32   // an owner's first address
	more    map[ownerSum][]uint32 // its others, rarely any
}

// NewMetadataCache returns a cache of the claims fed by a watch of their
// metadata only (client asks for protobuf when built by
// metadata.NewForConfig): the owner annotations and labels say who holds
// each claim, so the spec is never decoded. Start runs it.
func NewMetadataCache(client metadata.Interface) *Cache {
	// No periodic resync: the watch keeps the view current and a resync
	// would only replay it.
	return newCache(metadatainformer.NewFilteredMetadataInformer(client, GVR, "", 0, cache.Indexers{}, nil).Informer())
}

// NewCache returns a cache of the claims fed by a watch of the whole
// objects through client. Decoding every claim's JSON makes it several
// times slower to sync and larger while syncing than NewMetadataCache,
// which a webhook should use; NewCache is for callers that have only a
// dynamic client. Start runs it.
func NewCache(client dynamic.Interface) *Cache {
	return newCache(dynamicinformer.NewFilteredDynamicInformer(client, GVR, "", 0, cache.Indexers{}, nil).Informer())
}

func newCache(inf cache.SharedIndexInformer) *Cache {
	c := &Cache{informer: inf, byAddr: map[uint32]*entry{}, byOwner: map[ownerSum]uint32{}, more: map[ownerSum][]uint32{}}
	// Store a compact entry instead of the whole object: at 100k claims the
	// objects alone would cost hundreds of MiB.
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

// Holder returns the known holder of addr, without its UID (the cache does
// not keep it). For a claim written by an older version, which names its
// owner in the spec only, the holder has just a namespace (no name): it is
// Same as no Owner, so callers that act on a match ask the API server.
func (c *Cache) Holder(addr netip.Addr) (Owner, bool) {
	if c == nil {
		return Owner{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.byAddr[v4(addr)]
	if !ok {
		return Owner{}, false
	}
	return e.holder(), true
}

// holds says whether addr is known taken, and by the owner whose sum is
// owner: also for claims of older versions, which name their owner by hash
// only.
func (c *Cache) holds(addr netip.Addr, owner ownerSum) (taken, byOwner bool, touched time.Time) {
	if c == nil {
		return false, false, time.Time{}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.byAddr[v4(addr)]
	if !ok {
		return false, false, time.Time{}
	}
	return true, e.sum == owner, time.Unix(e.touched, 0)
}

// HeldBy returns the known claims of o, in address order. Host is empty for
// a claim written by an older version.
func (c *Cache) HeldBy(o Owner) []Held {
	if c == nil {
		return nil
	}
	sum := sumOf(o)
	c.mu.RLock()
	defer c.mu.RUnlock()
	first, ok := c.byOwner[sum]
	if !ok {
		return nil
	}
	var out []Held
	for _, k := range append([]uint32{first}, c.more[sum]...) {
		out = append(out, Held{Addr: addrOf(k), Host: c.byAddr[k].holder().Host})
	}
	sortHeld(out)
	return out
}

func sortHeld(h []Held) {
	slices.SortFunc(h, func(a, b Held) int { return a.Addr.Compare(b.Addr) })
}

// observe records what this process just learnt from the API server, ahead
// of the watch event.
func (c *Cache) observe(addr netip.Addr, o Owner, touched time.Time) {
	if c == nil {
		return
	}
	if !addr.Is4() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set(newEntry(addr, "", o, sumOf(o), touched))
}

func (c *Cache) forgetAddr(addr netip.Addr) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unset(v4(addr))
}

func (c *Cache) set(e *entry) {
	if old, ok := c.byAddr[e.addr]; ok && old.sum != e.sum {
		c.unset(e.addr)
	}
	c.byAddr[e.addr] = e
	if e.sum == (ownerSum{}) { // a hand-made claim without an owner label
		return
	}
	first, ok := c.byOwner[e.sum]
	switch {
	case !ok:
		c.byOwner[e.sum] = e.addr
	case first != e.addr && !slices.Contains(c.more[e.sum], e.addr):
		c.more[e.sum] = append(c.more[e.sum], e.addr)
	}
}

func (c *Cache) unset(k uint32) {
	old, ok := c.byAddr[k]
	if !ok {
		return
	}
	delete(c.byAddr, k)
	more := c.more[old.sum]
	if first, ok := c.byOwner[old.sum]; ok && first == k {
		if len(more) == 0 {
			delete(c.byOwner, old.sum)
			return
		}
		c.byOwner[old.sum], more = more[0], more[1:]
	} else {
		more = slices.DeleteFunc(more, func(a uint32) bool { return a == k })
	}
	if len(more) == 0 {
		delete(c.more, old.sum)
		return
	}
	c.more[old.sum] = more
}

func (c *Cache) apply(obj any, deleted bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, deleted = d.Obj, true
	}
	if _, ok := obj.(*entry); !ok {
		obj, _ = compact(obj)
	}
	e, ok := obj.(*entry)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if deleted {
		if cur, ok := c.byAddr[e.addr]; ok && cur.sum == e.sum {
			c.unset(e.addr)
		}
		return
	}
	c.set(e)
}

// entry is what the cache keeps per claim, in the informer's store and in
// the cache's indexes alike: about 150 bytes, so that 100k claims fit in a
// few tens of MiB.
type entry struct {
	addr    uint32   // IPv4
	rv      string   // resourceVersion: the informer tells updates from resyncs by it
	sum     ownerSum // zero for a claim without an owner label
	touched int64    // Unix seconds
	owner   string   // namespace, name and host, NUL-separated
}

func newEntry(addr netip.Addr, rv string, o Owner, sum ownerSum, touched time.Time) *entry {
	return &entry{addr: v4(addr), rv: rv, sum: sum, touched: touched.Unix(), owner: o.Namespace + "\x00" + o.Name + "\x00" + o.Host}
}

func (e *entry) holder() Owner {
	ns, rest, _ := strings.Cut(e.owner, "\x00")
	name, host, _ := strings.Cut(rest, "\x00")
	return Owner{Namespace: ns, Name: name, Host: host}
}

// GetObjectMeta gives the informer the name and resourceVersion it keys
// and compares entries by.
func (e *entry) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Name: addrOf(e.addr).String(), ResourceVersion: e.rv}
}

func (e *entry) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

func (e *entry) DeepCopyObject() runtime.Object {
	c := *e
	return &c
}

// compact turns a claim (whole object or metadata) into an entry; anything
// else, and claims that do not parse, pass through untouched and are
// ignored by apply.
func compact(obj any) (any, error) {
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		a, h, err := claimOf(o)
		if err != nil || !a.Is4() {
			return obj, nil //nolint:nilerr // a malformed claim must not stop the watch
		}
		return newEntry(a, o.GetResourceVersion(), h, sumOf(h), lastTouch(o)), nil
	case *metav1.PartialObjectMetadata:
		a, err := netip.ParseAddr(o.Name)
		if err != nil || !a.Is4() {
			return obj, nil //nolint:nilerr // a malformed claim must not stop the watch
		}
		h, sum := ownerOfMeta(o)
		return newEntry(a, o.ResourceVersion, h, sum, lastTouch(o)), nil
	default:
		return obj, nil
	}
}

// v4 is addr as a number; 0 (not a VIP) for anything but an IPv4 address.
func v4(addr netip.Addr) uint32 {
	if !addr.Is4() {
		return 0
	}
	b := addr.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addrOf(k uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)})
}
