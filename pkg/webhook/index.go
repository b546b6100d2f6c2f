package webhook

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// Index is what the handlers need to know of the cluster's other objects.
type Index interface {
	// Synced reports whether the index holds the cluster's objects; until
	// then the checks that need it are skipped.
	Synced() bool
	// Entries lists the ServiceEntries that have host among their hosts.
	Entries(host string) []EntryRef
	// Entry is the ServiceEntry for host visible from namespace, or nil.
	Entry(host, namespace string) *rules.Entry
	// HasDestinationRule reports whether a DestinationRule for host is
	// visible wherever a config in namespace with exportTo is.
	HasDestinationRule(host, namespace string, exportTo []string) bool
}

// EntryRef is a ServiceEntry as the index keeps it.
type EntryRef struct {
	rules.Entry
	ExportTo []string
}

// ObjectIndex is the Index of a cluster, fed by watches of ServiceEntries
// and DestinationRules. It keeps only what the checks read (hosts,
// exportTo, ports, endpoint labels), not the objects.
type ObjectIndex struct {
	entries, rules cache.SharedIndexInformer
	handlers       []cache.ResourceEventHandlerRegistration

	mu        sync.RWMutex
	byHost    map[string]map[string]*EntryRef // host → namespace/name → entry
	rulesHost map[string]map[string][]string  // host → namespace/name → exportTo, keyed "ns/name"
}

// NewObjectIndex returns the index of the cluster behind client; Start runs
// it.
func NewObjectIndex(client dynamic.Interface) *ObjectIndex {
	x := &ObjectIndex{byHost: map[string]map[string]*EntryRef{}, rulesHost: map[string]map[string][]string{}}
	x.entries = dynamicinformer.NewFilteredDynamicInformer(client, rules.ServiceEntryGVR, "", 0, cache.Indexers{}, nil).Informer()
	x.rules = dynamicinformer.NewFilteredDynamicInformer(client, rules.DestinationRuleGVR, "", 0, cache.Indexers{}, nil).Informer()
	_ = x.entries.SetTransform(compactEntry)
	_ = x.rules.SetTransform(compactRule)
	reg, _ := x.entries.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { x.setEntry(o, false) },
		UpdateFunc: func(old, o any) { x.setEntry(old, true); x.setEntry(o, false) },
		DeleteFunc: func(o any) { x.setEntry(o, true) },
	})
	x.handlers = append(x.handlers, reg)
	reg, _ = x.rules.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { x.setRule(o, false) },
		UpdateFunc: func(old, o any) { x.setRule(old, true); x.setRule(o, false) },
		DeleteFunc: func(o any) { x.setRule(o, true) },
	})
	x.handlers = append(x.handlers, reg)
	return x
}

// Start runs the watches until ctx ends (controller-runtime Runnable; every
// replica needs it).
func (x *ObjectIndex) Start(ctx context.Context) error {
	go x.rules.Run(ctx.Done())
	x.entries.Run(ctx.Done())
	return nil
}

// NeedLeaderElection is false: every replica admits.
func (x *ObjectIndex) NeedLeaderElection() bool { return false }

// Synced implements Index.
func (x *ObjectIndex) Synced() bool {
	for _, h := range x.handlers {
		if h == nil || !h.HasSynced() {
			return false
		}
	}
	return true
}

// Entries implements Index.
func (x *ObjectIndex) Entries(host string) []EntryRef {
	x.mu.RLock()
	defer x.mu.RUnlock()
	m := x.byHost[host]
	out := make([]EntryRef, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, *m[k])
	}
	return out
}

// Entry implements Index.
func (x *ObjectIndex) Entry(host, namespace string) *rules.Entry {
	for _, e := range x.Entries(host) {
		if rules.Visible(e.Namespace, e.ExportTo, namespace) {
			return &e.Entry
		}
	}
	return nil
}

// HasDestinationRule implements Index.
func (x *ObjectIndex) HasDestinationRule(host, namespace string, exportTo []string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for key, ex := range x.rulesHost[host] {
		ns, _, _ := cutKey(key)
		if rules.VisibleTogether(ns, ex, namespace, exportTo) {
			return true
		}
	}
	return false
}

func cutKey(key string) (ns, name string, ok bool) { return strings.Cut(key, "/") }

// compact is what the informers store of an object: its name (the
// informer's store keys objects by it) and what the checks read.
type compact struct {
	metav1.ObjectMeta
	key   string
	hosts []string
	entry *EntryRef // ServiceEntries only
}

func newCompact(u *unstructured.Unstructured, hosts []string, e *EntryRef) *compact {
	return &compact{
		ObjectMeta: metav1.ObjectMeta{Namespace: u.GetNamespace(), Name: u.GetName(), ResourceVersion: u.GetResourceVersion()},
		key:        u.GetNamespace() + "/" + u.GetName(), hosts: hosts, entry: e,
	}
}

func (c *compact) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }
func (c *compact) DeepCopyObject() runtime.Object {
	cp := *c
	return &cp
}

func tombstone(o any) any {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		return d.Obj
	}
	return o
}

func compactEntry(o any) (any, error) {
	u, ok := tombstone(o).(*unstructured.Unstructured)
	if !ok {
		return o, nil
	}
	se := rules.ReadServiceEntry(u.Object)
	e := &EntryRef{Entry: se.Entry(), ExportTo: se.ExportTo}
	spec, _ := u.Object["spec"].(map[string]any)
	if len(rules.CheckServiceEntrySize(spec, nil)) > 0 {
		// The index holds no more of an entry than an admissible one has.
		e.Ports, e.EndpointLabels, e.ClusterDomain = nil, nil, ""
	}
	return newCompact(u, se.Hosts, e), nil
}

func compactRule(o any) (any, error) {
	u, ok := tombstone(o).(*unstructured.Unstructured)
	if !ok {
		return o, nil
	}
	host, _, _ := unstructured.NestedString(u.Object, "spec", "host")
	return newCompact(u, []string{host}, &EntryRef{ExportTo: stringList(u.Object, "spec", "exportTo")}), nil
}

func (x *ObjectIndex) setEntry(o any, remove bool) {
	c, ok := tombstone(o).(*compact)
	if !ok {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, h := range c.hosts {
		setIn(x.byHost, h, c.key, c.entry, remove)
	}
}

func (x *ObjectIndex) setRule(o any, remove bool) {
	c, ok := tombstone(o).(*compact)
	if !ok || len(c.hosts) == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	setIn(x.rulesHost, c.hosts[0], c.key, c.entry.ExportTo, remove)
}

// setIn records (or, with remove, forgets) v as the object key of host.
func setIn[V any](byHost map[string]map[string]V, host, key string, v V, remove bool) {
	m := byHost[host]
	if remove {
		delete(m, key)
		if len(m) == 0 {
			delete(byHost, host)
		}
		return
	}
	if m == nil {
		m = map[string]V{}
		byHost[host] = m
	}
	m[key] = v
}

// stringList reads a list of strings, leaving out items of another type.
func stringList(obj map[string]any, path ...string) []string {
	raw, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
	l, _ := raw.([]any)
	out := make([]string, 0, len(l))
	for _, v := range l {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
