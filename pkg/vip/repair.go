package vip

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/clock"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// Repair defaults.
const (
	DefaultRepairInterval = 30 * time.Second
	DefaultRepairGrace    = 60 * time.Second
)

// Repair actions, the "action" label of mesh_webhook_vip_repairs_total.
const (
	ActionOrphanDeleted = "orphan-deleted" // claim whose ServiceEntry is gone or no longer lists the address
	ActionAdopted       = "adopted"        // claim created for a ServiceEntry that had the address before
	ActionUIDSet        = "uid-set"        // claim completed with its ServiceEntry's UID
	ActionOwnerMetaSet  = "owner-meta-set" // claim of an older version given the owner labels and annotations the cache reads
)

// ReasonDuplicateVIP is the reason of the Warning Event on each
// ServiceEntry that shares its VIP with another.
const ReasonDuplicateVIP = "DuplicateVIP"

// EventRecorder is what the repair loop needs to report duplicates;
// client-go's record.EventRecorder satisfies it.
type EventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// RepairerOptions configure a Repairer.
type RepairerOptions struct {
	// Client reaches the cluster: VIPClaims and ServiceEntries.
	Client dynamic.Interface
	// Recorder receives the duplicate reports; nil records no Events.
	Recorder EventRecorder
	// Registry gets the metrics (e.g. controller-runtime's metrics.Registry);
	// nil keeps them unregistered.
	Registry prometheus.Registerer
	// Claims, when set, is the allocator the repair loop shares with the
	// webhook: its space (Claims.SetSpace included) and cache are used, and
	// Space and ManagedBy are ignored. Grace defaults to its repair grace
	// (WithRepairGrace) and must not differ from it.
	Claims *Claims
	// Space is the VIP space when Claims is nil; addresses outside it are
	// neither adopted nor reported.
	Space rules.VIPSpace
	// Suffix is the host suffix (default rules.DefaultSuffix).
	Suffix string
	// Interval between passes (default DefaultRepairInterval).
	Interval time.Duration
	// Grace is how long a claim must stay orphaned before it is deleted: it
	// is deleted only when seen orphaned on two passes at least Grace apart
	// and not touched (TouchedAnnotation) within Grace, which
	// leaves time for a ServiceEntry admitted with a fresh or reused claim to
	// be stored (default DefaultRepairGrace). The Claims of the webhook should
	// be given the same (WithRepairGrace).
	Grace time.Duration
	// ManagedBy labels the claims created by adoption (default
	// ManagedByWebhook).
	ManagedBy string
	// ReportOnly makes passes read-only: they report orphans, adoptable
	// entries and duplicates without writing or recording Events.
	ReportOnly bool
	// Log receives one line per action and per failed pass.
	Log logr.Logger
	// Clock is the clock (default the real one); tests move a fake one.
	Clock clock.WithTicker
}

// Repairer keeps claims and ServiceEntries in step. It is a
// controller-runtime manager.Runnable that needs leader election: one
// replica repairs at a time.
type Repairer struct {
	opts   RepairerOptions
	claims *Claims

	repairs    *prometheus.CounterVec
	claimCount prometheus.Gauge
	duplicates prometheus.Gauge

	suffix atomic.Pointer[string] // the host suffix in force (SetSuffix)

	mu       sync.Mutex
	suspects map[netip.Addr]suspect // claims seen orphaned, by address
	reported map[netip.Addr]string  // duplicates already reported, by address
}

type suspect struct {
	since time.Time
	uid   string // of the claim object: a re-created claim starts afresh
}

// NewRepairer validates the options and registers the metrics.
func NewRepairer(opts RepairerOptions) (*Repairer, error) {
	if opts.Client == nil {
		return nil, errors.New("VIP repair needs a client")
	}
	if opts.Claims == nil && opts.Space.Size() == 0 {
		return nil, errors.New("VIP repair needs a VIP space; use rules.DefaultVIPSpace()")
	}
	if opts.Suffix == "" {
		opts.Suffix = rules.DefaultSuffix
	}
	if opts.Interval < 0 || opts.Grace < 0 {
		return nil, fmt.Errorf("VIP repair interval (%s) and grace period (%s) must not be negative", opts.Interval, opts.Grace)
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultRepairInterval
	}
	if opts.Grace == 0 {
		opts.Grace = DefaultRepairGrace
		if opts.Claims != nil {
			opts.Grace = opts.Claims.grace
		}
	}
	if opts.Claims != nil && opts.Claims.grace != opts.Grace {
		return nil, fmt.Errorf("VIP repair grace period %s differs from the %s its Claims touch reused claims by; build them with vip.WithRepairGrace(%s)", opts.Grace, opts.Claims.grace, opts.Grace)
	}
	if opts.ManagedBy == "" {
		opts.ManagedBy = ManagedByWebhook
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	r := &Repairer{
		opts:     opts,
		claims:   opts.Claims,
		suspects: map[netip.Addr]suspect{},
		reported: map[netip.Addr]string{},
	}
	if r.claims == nil {
		r.claims = NewClaims(opts.Client, opts.Space, WithManagedBy(opts.ManagedBy), WithClock(opts.Clock), WithRepairGrace(opts.Grace))
	}
	var err error
	if r.repairs, err = register(opts.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mesh_webhook_vip_repairs_total",
		Help: "VIPClaim repairs by action (orphan-deleted, adopted, uid-set, owner-meta-set).",
	}, []string{"action"})); err != nil {
		return nil, err
	}
	if r.claimCount, err = register(opts.Registry, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mesh_webhook_vip_claims",
		Help: "VIPClaims in the cluster at the end of the last repair pass.",
	})); err != nil {
		return nil, err
	}
	if r.duplicates, err = register(opts.Registry, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mesh_webhook_vip_duplicates",
		Help: "VIPs listed by more than one .global ServiceEntry at the last repair pass.",
	})); err != nil {
		return nil, err
	}
	return r, nil
}

// register registers c, or returns the collector registered before under
// the same name (a second Repairer in one process shares the metrics).
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	if err != nil {
		return c, fmt.Errorf("register VIP repair metrics: %w", err)
	}
	return c, nil
}

// Suffix is the host suffix whose entries the loop repairs.
func (r *Repairer) Suffix() string {
	if s := r.suffix.Load(); s != nil {
		return *s
	}
	return r.opts.Suffix
}

// SetSuffix changes the host suffix from the next pass on (a policy
// reload).
func (r *Repairer) SetSuffix(suffix string) { r.suffix.Store(&suffix) }

// NeedLeaderElection is true: two replicas repairing at once would race on
// adoption and report duplicates twice.
func (r *Repairer) NeedLeaderElection() bool { return true }

// Start runs a pass at once and then every Interval until ctx ends. A failed
// pass is logged and retried at the next tick.
func (r *Repairer) Start(ctx context.Context) error {
	t := r.opts.Clock.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		if _, err := r.RepairOnce(ctx); err != nil && ctx.Err() == nil {
			r.opts.Log.Error(err, "VIP repair pass failed; retrying at the next interval", "interval", r.opts.Interval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// Duplicate is a VIP listed by several `.global` ServiceEntries.
type Duplicate struct {
	Addr netip.Addr
	// Entries list the ServiceEntries, oldest first.
	Entries []Owner
	// Holder holds the claim, if there is one.
	Holder *Owner
}

// RepairReport says what one pass found and did.
type RepairReport struct {
	// Claims is the number of claims after the pass.
	Claims int
	// Orphans are claims whose ServiceEntry is gone or no longer lists the
	// address, still in their grace period (or all of them in ReportOnly).
	Orphans []netip.Addr
	// Deleted are the orphan claims deleted by this pass.
	Deleted []netip.Addr
	// Adopted are the claims created for pre-existing ServiceEntries (in
	// ReportOnly: the addresses that would be).
	Adopted []netip.Addr
	// UIDSet are the claims completed with their ServiceEntry's UID.
	UIDSet []netip.Addr
	// OwnerMetaSet are the claims written by an older version that were
	// given the owner labels and annotations (in ReportOnly: that would be).
	OwnerMetaSet []netip.Addr
	// Duplicates are the VIPs listed by more than one ServiceEntry.
	Duplicates []Duplicate
}

// entrySE is what a pass needs of a ServiceEntry.
type entrySE struct {
	owner   Owner
	created time.Time
	addrs   []netip.Addr // in the space
	obj     *unstructured.Unstructured
}

func (e *entrySE) lists(a netip.Addr) bool { return slices.Contains(e.addrs, a) }

// RepairOnce runs one pass: list the claims, then the ServiceEntries; delete
// claims orphaned for longer than the grace period, complete missing UIDs,
// adopt unclaimed addresses of `.global` ServiceEntries (the oldest entry
// wins a shared address) and report shared addresses.
func (r *Repairer) RepairOnce(ctx context.Context) (RepairReport, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var rep RepairReport
	// Claims before entries: an entry admitted between the two lists is
	// then seen with an unclaimed address, and adopting it fails harmlessly
	// with AlreadyExists; the other order would make its claim a suspect.
	claimObjs, err := listAll(ctx, r.opts.Client.Resource(GVR), GVR)
	if err != nil {
		return rep, err
	}
	seObjs, err := listAll(ctx, r.opts.Client.Resource(rules.ServiceEntryGVR), rules.ServiceEntryGVR)
	if err != nil {
		return rep, err
	}
	entries, byAddr := r.entries(seObjs, r.claims.Space())
	claimed, errs := r.checkClaims(ctx, claimObjs, entries, &rep)
	errs = append(errs, r.checkEntries(ctx, byAddr, claimed, &rep)...)
	rep.Claims = len(claimed)
	r.claimCount.Set(float64(rep.Claims))
	r.duplicates.Set(float64(len(rep.Duplicates)))
	return rep, errors.Join(errs...)
}

// checkClaims is the first half of a pass: every claim is kept (its entry
// lists the address, or its holder touched it lately), or deleted once
// orphaned for the grace period. It returns the claims that stay.
func (r *Repairer) checkClaims(ctx context.Context, claimObjs []unstructured.Unstructured, entries map[string]*entrySE, rep *RepairReport) (map[netip.Addr]Owner, []error) {
	now := r.opts.Clock.Now()
	claimed := map[netip.Addr]Owner{}
	var errs []error
	for i := range claimObjs {
		u := &claimObjs[i]
		a, h, err := claimOf(u)
		if err != nil {
			r.opts.Log.Info("ignoring a malformed VIPClaim", "claim", u.GetName(), "reason", err.Error())
			continue
		}
		se := entries[h.String()]
		if se != nil && se.lists(a) {
			delete(r.suspects, a)
			claimed[a] = h
			if err := r.complete(ctx, u, h, se.owner.UID, rep); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if t, ok := touched(u); ok && now.Sub(t) < r.opts.Grace {
			// Reused by its holder lately: its entry may not be stored yet.
			// (A fresh claim needs no such care: it is deleted only once
			// seen orphaned twice, a grace period apart, and by then a
			// reuse touches it.)
			delete(r.suspects, a)
			claimed[a] = h
			continue
		}
		done, err := r.orphan(ctx, u, a, h, now)
		switch {
		case err != nil:
			errs = append(errs, err)
			claimed[a] = h
		case done:
			rep.Deleted = append(rep.Deleted, a)
		default:
			rep.Orphans = append(rep.Orphans, a)
			claimed[a] = h
		}
	}
	for a := range r.suspects {
		if _, ok := claimed[a]; !ok {
			delete(r.suspects, a)
		}
	}
	return claimed, errs
}

// checkEntries is the second half: an address an entry lists without a
// claim is adopted for its oldest entry, and an address several entries
// list is reported once as a duplicate.
func (r *Repairer) checkEntries(ctx context.Context, byAddr map[netip.Addr][]*entrySE, claimed map[netip.Addr]Owner, rep *RepairReport) []error {
	var errs []error
	for _, a := range slices.SortedFunc(maps.Keys(byAddr), netip.Addr.Compare) {
		ses := byAddr[a]
		if _, ok := claimed[a]; !ok {
			oldest := ses[0].owner
			adopted, err := r.adopt(ctx, a, oldest)
			if err != nil {
				errs = append(errs, err)
			}
			if adopted {
				rep.Adopted = append(rep.Adopted, a)
				claimed[a] = oldest
			}
		}
		if len(ses) > 1 {
			d := Duplicate{Addr: a}
			for _, se := range ses {
				d.Entries = append(d.Entries, se.owner)
			}
			if h, ok := claimed[a]; ok {
				d.Holder = &h
			}
			rep.Duplicates = append(rep.Duplicates, d)
			r.reportDuplicate(d, ses)
		}
	}
	for a := range r.reported {
		if len(byAddr[a]) < 2 {
			delete(r.reported, a)
		}
	}
	return errs
}

// entries indexes the `.global` ServiceEntries by namespace/name and their
// in-space addresses by address, each address's entries oldest first.
func (r *Repairer) entries(objs []unstructured.Unstructured, space rules.VIPSpace) (map[string]*entrySE, map[netip.Addr][]*entrySE) {
	byName := map[string]*entrySE{}
	byAddr := map[netip.Addr][]*entrySE{}
	for i := range objs {
		u := &objs[i]
		view := rules.ReadServiceEntry(u.Object)
		host := slices.IndexFunc(view.Hosts, func(h string) bool { return rules.HasSuffix(h, r.Suffix()) })
		if host < 0 {
			continue
		}
		se := &entrySE{
			owner:   Owner{Namespace: view.Namespace, Name: view.Name, UID: string(u.GetUID()), Host: view.Hosts[host]},
			created: u.GetCreationTimestamp().Time,
			obj:     u,
		}
		for _, s := range view.Addresses {
			if a, err := netip.ParseAddr(s); err == nil && space.Contains(a) && !se.lists(a) {
				se.addrs = append(se.addrs, a)
				byAddr[a] = append(byAddr[a], se)
			}
		}
		byName[se.owner.String()] = se
	}
	for _, ses := range byAddr {
		slices.SortFunc(ses, func(a, b *entrySE) int {
			if c := a.created.Compare(b.created); c != 0 {
				return c
			}
			return strings.Compare(a.owner.String(), b.owner.String())
		})
	}
	return byName, byAddr
}

// orphan handles a claim whose entry does not list its address: the first
// sighting starts the grace period; a sighting after it deletes the claim,
// once the entry is read again and still does not list the address.
func (r *Repairer) orphan(ctx context.Context, u *unstructured.Unstructured, a netip.Addr, h Owner, now time.Time) (done bool, err error) {
	s, seen := r.suspects[a]
	if !seen || s.uid != string(u.GetUID()) {
		r.suspects[a] = suspect{since: now, uid: string(u.GetUID())}
		return false, nil
	}
	if now.Sub(s.since) < r.opts.Grace || r.opts.ReportOnly {
		return false, nil
	}
	se, err := r.opts.Client.Resource(rules.ServiceEntryGVR).Namespace(h.Namespace).Get(ctx, h.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return false, fmt.Errorf("check ServiceEntry %s before deleting the orphan VIPClaim %s: %w", h, a, err)
	default:
		if slices.Contains(rules.ReadServiceEntry(se.Object).Addresses, a.String()) {
			delete(r.suspects, a)
			return false, nil
		}
	}
	// The delete carries the resourceVersion listed: a claim touched since
	// (reused by its holder) is left alone.
	res, err := r.claims.deleteExact(ctx, u)
	delete(r.suspects, a)
	switch {
	case err != nil, res == claimChanged: // look again next pass
		return false, err
	case res == claimGone:
		return true, nil
	}
	r.repairs.WithLabelValues(ActionOrphanDeleted).Inc()
	r.opts.Log.Info("deleted orphan VIPClaim", "address", a, "serviceEntry", h.String(), "orphanedFor", now.Sub(s.since).Round(time.Second))
	return true, nil
}

// complete gives a live claim its entry's UID (when it has none) and the
// owner labels and annotations (when written by an older version), in one
// update.
func (r *Repairer) complete(ctx context.Context, u *unstructured.Unstructured, h Owner, uid string, rep *RepairReport) error {
	a, _ := netip.ParseAddr(u.GetName())
	u = u.DeepCopy()
	metaSet := completeMeta(u, h)
	if metaSet {
		rep.OwnerMetaSet = append(rep.OwnerMetaSet, a)
	}
	setUID := h.UID == "" && uid != ""
	if setUID {
		if err := unstructured.SetNestedField(u.Object, uid, "spec", "serviceEntry", "uid"); err != nil {
			return err
		}
		ann := u.GetAnnotations()
		ann[OwnerUIDAnnotation] = uid
		u.SetAnnotations(ann)
		rep.UIDSet = append(rep.UIDSet, a)
	}
	if r.opts.ReportOnly || !setUID && !metaSet {
		return nil
	}
	_, err := r.opts.Client.Resource(GVR).Update(ctx, u, metav1.UpdateOptions{})
	switch {
	case err == nil:
		if setUID {
			r.repairs.WithLabelValues(ActionUIDSet).Inc()
		}
		if metaSet {
			r.repairs.WithLabelValues(ActionOwnerMetaSet).Inc()
		}
		return nil
	case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		return nil // changed since the list; next pass
	default:
		return fmt.Errorf("complete VIPClaim %s with the UID and labels of its ServiceEntry: %w", u.GetName(), err)
	}
}

// adopt claims a for o, an entry that listed it before any claim did.
func (r *Repairer) adopt(ctx context.Context, a netip.Addr, o Owner) (bool, error) {
	if r.opts.ReportOnly {
		return true, nil
	}
	_, err := r.opts.Client.Resource(GVR).Create(ctx, newClaim(a, o, r.opts.ManagedBy), metav1.CreateOptions{})
	switch {
	case err == nil:
		r.repairs.WithLabelValues(ActionAdopted).Inc()
		r.opts.Log.Info("adopted VIP of a pre-existing ServiceEntry", "address", a, "serviceEntry", o.String())
		return true, nil
	case apierrors.IsAlreadyExists(err):
		return false, nil // claimed since the list; next pass checks it
	default:
		return false, fmt.Errorf("adopt VIP %s of ServiceEntry %s: %w", a, o, err)
	}
}

// reportDuplicate records a Warning Event on each entry sharing d.Addr,
// once per change of the set of entries.
func (r *Repairer) reportDuplicate(d Duplicate, ses []*entrySE) {
	names := make([]string, len(d.Entries))
	for i, o := range d.Entries {
		names[i] = o.String()
	}
	key := strings.Join(names, ",")
	if r.reported[d.Addr] == key {
		return
	}
	r.reported[d.Addr] = key
	r.opts.Log.Info("duplicate VIP", "address", d.Addr, "serviceEntries", names)
	if r.opts.Recorder == nil || r.opts.ReportOnly {
		return
	}
	holder := "no VIPClaim holds it yet"
	if d.Holder != nil {
		holder = "VIPClaim " + d.Addr.String() + " holds it for " + d.Holder.String()
	}
	for _, se := range ses {
		var others []string
		for _, n := range names {
			if n != se.owner.String() {
				others = append(others, n)
			}
		}
		obj := se.obj.DeepCopy()
		obj.SetAPIVersion(rules.ServiceEntryGVR.GroupVersion().String())
		obj.SetKind("ServiceEntry")
		r.opts.Recorder.Eventf(obj, corev1.EventTypeWarning, ReasonDuplicateVIP,
			"VIP %s is also used by ServiceEntry %s (%s); give all but one of them another address, or remove spec.addresses to have a free one allocated",
			d.Addr, strings.Join(others, ", "), holder)
	}
}

// listAll lists every object of a resource, a page at a time.
func listAll(ctx context.Context, ri dynamic.ResourceInterface, gvr schema.GroupVersionResource) ([]unstructured.Unstructured, error) {
	var out []unstructured.Unstructured
	opts := metav1.ListOptions{Limit: 500}
	for {
		l, err := ri.List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", gvr.GroupResource(), err)
		}
		out = append(out, l.Items...)
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			return out, nil
		}
	}
}
