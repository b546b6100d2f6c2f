package vip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/clock"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// DefaultMaxProbes bounds the API calls one allocation may spend on taken
// addresses, so that a nearly full space fails within an admission timeout
// instead of walking millions of candidates.
const DefaultMaxProbes = 1024

// ErrExhausted is wrapped by Allocate's error when no free address was found.
var ErrExhausted = errors.New("no free VIP")

// Claims talks to one cluster's API server through a dynamic client. It is
// safe for concurrent use; several Claims (in several processes) may work on
// one cluster at once because every reservation is a create on the API server.
type Claims struct {
	client    dynamic.ResourceInterface
	space     atomic.Pointer[rules.VIPSpace]
	managedBy string
	maxProbes int
	cache     *Cache
	clock     clock.PassiveClock
	grace     time.Duration
}

// Option configures Claims.
type Option func(*Claims)

// WithManagedBy sets the app.kubernetes.io/managed-by label of the claims
// created (default rules.ManagedByValue; the webhook uses ManagedByWebhook).
func WithManagedBy(v string) Option { return func(c *Claims) { c.managedBy = v } }

// WithMaxProbes bounds the API calls one Allocate spends on taken addresses
// (default DefaultMaxProbes).
func WithMaxProbes(n int) Option { return func(c *Claims) { c.maxProbes = n } }

// WithCache makes Allocate consult an in-memory view of the existing claims:
// it looks up what the owner already holds there instead of listing claims
// by label (a scan of every claim on the API server) and skips addresses
// known to be taken, so an allocation costs one or two API calls however many
// claims exist. The API server stays the authority: a create that races with
// another replica still fails with AlreadyExists and probing continues. The
// cache must be started (Cache.Start) by the caller; until it has synced,
// Allocate looks up the owner's claims by label as without it.
func WithCache(cache *Cache) Option { return func(c *Claims) { c.cache = cache } }

// WithClock sets the clock that stamps TouchedAnnotation (default the real
// one); tests move a fake one.
func WithClock(clk clock.PassiveClock) Option { return func(c *Claims) { c.clock = clk } }

// WithRepairGrace is the grace period of the repair loop working on the
// cluster (default DefaultRepairGrace). A claim reused by its holder whose
// last touch is older than half of it is touched again, so that the repair
// loop neither counts it orphaned nor deletes it: an entry being re-created
// under the same name keeps its address.
func WithRepairGrace(d time.Duration) Option { return func(c *Claims) { c.grace = d } }

// NewClaims returns Claims for the cluster behind client, allocating from
// space.
func NewClaims(client dynamic.Interface, space rules.VIPSpace, opts ...Option) *Claims {
	c := &Claims{client: client.Resource(GVR), managedBy: rules.ManagedByValue, maxProbes: DefaultMaxProbes}
	c.space.Store(&space)
	for _, opt := range opts {
		opt(c)
	}
	if c.maxProbes <= 0 {
		c.maxProbes = DefaultMaxProbes
	}
	if c.clock == nil {
		c.clock = clock.RealClock{}
	}
	if c.grace <= 0 {
		c.grace = DefaultRepairGrace
	}
	return c
}

// Space is the address space Claims allocates from.
func (c *Claims) Space() rules.VIPSpace { return *c.space.Load() }

// SetSpace changes the address space, e.g. when the configuration is
// reloaded. Calls under way finish with the space they started with;
// existing claims outside the new space stay until their entries release
// them (a claim is never moved).
func (c *Claims) SetSpace(space rules.VIPSpace) { c.space.Store(&space) }

// Installed reports whether the API server serves the VIPClaim resource,
// that is whether the CRD is installed and established.
func (c *Claims) Installed(ctx context.Context) (bool, error) {
	_, err := c.client.List(ctx, metav1.ListOptions{Limit: 1})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("check whether VIPClaims (%s) are served: %w", GVR.GroupResource(), err)
	}
}

// Allocate returns a VIP held by o for o.Host: the one o already holds for
// that host if any (touched, see WithRepairGrace), otherwise the first of
// Space().Candidates(o.Host) whose claim it manages to create (AlreadyExists
// moves on to the next candidate). With dryRun nothing is written: the
// result is the address a real call would try to claim first, i.e. the
// first candidate not already claimed.
func (c *Claims) Allocate(ctx context.Context, o Owner, dryRun bool) (netip.Addr, error) {
	if err := o.validate(); err != nil {
		return netip.Addr{}, err
	}
	if o.Host == "" {
		return netip.Addr{}, fmt.Errorf("cannot allocate a VIP for ServiceEntry %s without a host", o)
	}
	space := c.Space()
	if a, ok, err := c.held(ctx, o, space, dryRun); err != nil || ok {
		return a, err
	}
	attempts := 0
	sum := sumOf(o)
	for a := range space.Candidates(o.Host) {
		if taken, byO, _ := c.cache.holds(a, sum); taken && !byO {
			continue
		}
		if attempts >= c.maxProbes {
			break
		}
		attempts++
		if dryRun {
			h, found, err := c.Holder(ctx, a)
			switch {
			case err != nil:
				return netip.Addr{}, err
			case !found || h.Same(o) && strings.EqualFold(h.Host, o.Host):
				return a, nil
			}
			continue
		}
		_, err := c.client.Create(ctx, newClaim(a, o, c.managedBy), metav1.CreateOptions{})
		if err == nil {
			c.cache.observe(a, o, c.clock.Now())
			return a, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return netip.Addr{}, fmt.Errorf("claim VIP %s for ServiceEntry %s: %w", a, o, err)
		}
		// Taken; by o itself when a concurrent request for the same entry won.
		h, u, found, err := c.get(ctx, a)
		if err != nil {
			return netip.Addr{}, err
		}
		if found && h.Same(o) && strings.EqualFold(h.Host, o.Host) {
			if ok, err := c.touch(ctx, u); err != nil || ok {
				return a, err
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("%w in %s for ServiceEntry %s after %d attempts; widen the VIP range or delete unused ServiceEntries (kubectl get vipclaims lists the addresses in use)",
		ErrExhausted, space, o, attempts)
}

// held finds a claim o already holds for o.Host in space and, unless
// dryRun, touches it. A claim that changes under the touch (deleted by the
// repair loop, say) is looked for again.
func (c *Claims) held(ctx context.Context, o Owner, space rules.VIPSpace, dryRun bool) (netip.Addr, bool, error) {
	for range 3 {
		objs, err := c.owned(ctx, o)
		if err != nil {
			return netip.Addr{}, false, err
		}
		var u *unstructured.Unstructured
		for _, obj := range objs {
			a, h, err := claimOf(obj)
			if err == nil && strings.EqualFold(h.Host, o.Host) && space.Contains(a) {
				u = obj
				break
			}
		}
		if u == nil {
			return netip.Addr{}, false, nil
		}
		a, _, _ := claimOf(u)
		if dryRun {
			return a, true, nil
		}
		ok, err := c.touch(ctx, u)
		if err != nil || ok {
			return a, ok, err
		}
	}
	return netip.Addr{}, false, fmt.Errorf("reuse the VIP of ServiceEntry %s: its claim keeps changing; try again", o)
}

// owned returns the claims o holds, in address order, as the API server has
// them. Through the cache once it has synced (each claim read again),
// otherwise by label: before the sync an empty cache would make an entry's
// existing claim look missing.
func (c *Claims) owned(ctx context.Context, o Owner) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	if c.cache != nil && c.cache.HasSynced() {
		for _, h := range c.cache.HeldBy(o) {
			cur, u, found, err := c.get(ctx, h.Addr)
			if err != nil {
				return nil, err
			}
			if found && cur.Same(o) {
				out = append(out, u)
			}
		}
		return out, nil
	}
	l, err := c.client.List(ctx, metav1.ListOptions{LabelSelector: ownerSelector(o)})
	if err != nil {
		return nil, fmt.Errorf("list VIPClaims of ServiceEntry %s: %w", o, err)
	}
	for i := range l.Items {
		if _, h, err := claimOf(&l.Items[i]); err == nil && h.Same(o) { // not a hash collision or a hand-made label
			out = append(out, &l.Items[i])
		}
	}
	slices.SortFunc(out, func(a, b *unstructured.Unstructured) int {
		x, _ := netip.ParseAddr(a.GetName())
		y, _ := netip.ParseAddr(b.GetName())
		return x.Compare(y)
	})
	return out, nil
}

// fresh reports whether a claim last touched at t needs no touch yet.
func (c *Claims) fresh(t time.Time) bool { return c.clock.Since(t) < c.grace/2 }

// touch records on u, a claim its holder is reusing, that it is in use,
// unless it was touched (or created) within half the repair grace period:
// an ordinary update of an entry costs no write. The update carries u's
// resourceVersion, so it fails if the repair loop deleted the claim since u
// was read; and once it succeeds, a repair pass that read the claim before
// can no longer delete it, since its delete carries the resourceVersion it
// read. ok is false when u changed since it was read (the caller reads it
// again). A claim written by an older version also gets its owner labels
// and annotations.
func (c *Claims) touch(ctx context.Context, u *unstructured.Unstructured) (ok bool, err error) {
	if c.fresh(lastTouch(u)) {
		return true, nil
	}
	a, h, err := claimOf(u)
	if err != nil {
		return false, err
	}
	now := c.clock.Now()
	u = u.DeepCopy()
	completeMeta(u, h)
	ann := u.GetAnnotations()
	ann[TouchedAnnotation] = now.UTC().Format(time.RFC3339)
	u.SetAnnotations(ann)
	_, err = c.client.Update(ctx, u, metav1.UpdateOptions{})
	switch {
	case err == nil:
		c.cache.observe(a, h, now)
		return true, nil
	case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("touch VIPClaim %s of ServiceEntry %s: %w", a, h, err)
	}
}

// Held is one claim of an owner.
type Held struct {
	Addr netip.Addr
	Host string
}

// list returns the claims of o, in address order.
func (c *Claims) list(ctx context.Context, o Owner) ([]Held, error) {
	l, err := c.client.List(ctx, metav1.ListOptions{LabelSelector: ownerSelector(o)})
	if err != nil {
		return nil, fmt.Errorf("list VIPClaims of ServiceEntry %s: %w", o, err)
	}
	var out []Held
	for i := range l.Items {
		a, h, err := claimOf(&l.Items[i])
		if err != nil || !h.Same(o) { // a hash collision or a hand-made label
			continue
		}
		out = append(out, Held{Addr: a, Host: h.Host})
	}
	sortHeld(out)
	return out, nil
}

// Claim makes o the holder of addr. It returns nil if o already holds addr
// or the claim was created, a *TakenError if another ServiceEntry holds it,
// and an error carrying rules.ParseVIP's reason if addr is not in the space.
// With dryRun nothing is written.
func (c *Claims) Claim(ctx context.Context, addr netip.Addr, o Owner, dryRun bool) error {
	_, err := c.Acquire(ctx, addr, o, dryRun)
	return err
}

// Acquire is Claim that also says whether this call created the claim: a
// caller that undoes its work releases only the claims it created, never
// one that o already held (e.g. taken by a concurrent request for the same
// ServiceEntry). A claim o already holds is touched (see WithRepairGrace);
// with a synced cache that shows o holding addr, touched recently, no API
// call is made at all.
func (c *Claims) Acquire(ctx context.Context, addr netip.Addr, o Owner, dryRun bool) (created bool, err error) {
	if err := o.validate(); err != nil {
		return false, err
	}
	space := c.Space()
	if !space.Contains(addr) {
		if _, err := rules.ParseVIP(addr.String(), space); err != nil {
			return false, fmt.Errorf("VIP %s %w", addr, err)
		}
		return false, fmt.Errorf("VIP %s is outside the VIP space %s", addr, space)
	}
	if c.cache != nil && c.cache.HasSynced() {
		if _, byO, touched := c.cache.holds(addr, sumOf(o)); byO && (dryRun || c.fresh(touched)) {
			return false, nil
		}
	}
	// A holder may release between our create and our get: try again then.
	for range 3 {
		if !dryRun {
			_, err := c.client.Create(ctx, newClaim(addr, o, c.managedBy), metav1.CreateOptions{})
			if err == nil {
				c.cache.observe(addr, o, c.clock.Now())
				return true, nil
			}
			if !apierrors.IsAlreadyExists(err) {
				return false, fmt.Errorf("claim VIP %s for ServiceEntry %s: %w", addr, o, err)
			}
		}
		h, u, found, err := c.get(ctx, addr)
		switch {
		case err != nil:
			return false, err
		case !found && dryRun:
			return false, nil
		case !found:
			continue
		case !h.Same(o):
			return false, &TakenError{Addr: addr, Holder: h}
		case dryRun:
			return false, nil
		}
		if ok, err := c.touch(ctx, u); err != nil || ok {
			return false, err
		}
	}
	return false, fmt.Errorf("claim VIP %s for ServiceEntry %s: the claim keeps changing hands; try again", addr, o)
}

// Holder returns the ServiceEntry holding addr, if any.
func (c *Claims) Holder(ctx context.Context, addr netip.Addr) (Owner, bool, error) {
	h, _, found, err := c.get(ctx, addr)
	return h, found, err
}

func (c *Claims) get(ctx context.Context, addr netip.Addr) (Owner, *unstructured.Unstructured, bool, error) {
	u, err := c.client.Get(ctx, addr.String(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		c.cache.forgetAddr(addr)
		return Owner{}, nil, false, nil
	case err != nil:
		return Owner{}, nil, false, fmt.Errorf("get VIPClaim %s: %w", addr, err)
	}
	_, h, err := claimOf(u)
	if err != nil {
		return Owner{}, nil, false, err
	}
	c.cache.observe(addr, h, lastTouch(u))
	return h, u, true, nil
}

// Release deletes the claim of addr if o holds it. The delete carries the
// claim's UID and resourceVersion as preconditions, so a claim released and
// re-taken by someone else in the meantime is left alone. A missing claim or
// one held by another ServiceEntry is not an error.
func (c *Claims) Release(ctx context.Context, addr netip.Addr, o Owner) error {
	for range 3 {
		h, u, found, err := c.get(ctx, addr)
		if err != nil || !found || !h.Same(o) {
			return err
		}
		res, err := c.deleteExact(ctx, u)
		if res != claimChanged || err != nil {
			return err
		}
	}
	return fmt.Errorf("release VIP %s of ServiceEntry %s: the claim keeps changing; try again", addr, o)
}

// ReleaseOwned deletes the claims of the ServiceEntry o.Namespace/o.Name
// whose recorded owner UID is o.UID or empty, e.g. when that entry is
// deleted; a claim recording another UID belongs to a newer entry of the
// same name and is kept. Each delete carries the claim's UID and
// resourceVersion as preconditions; a claim changed since it was read is
// read and judged again. released lists the addresses deleted (with dryRun:
// those that would be, and nothing is written), in address order. The
// claims are found through the cache once it has synced, otherwise by
// label.
func (c *Claims) ReleaseOwned(ctx context.Context, o Owner, dryRun bool) (released []netip.Addr, err error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	objs, err := c.owned(ctx, o)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, u := range objs {
		a, ok, err := c.releaseOwned(ctx, u, o, dryRun)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			released = append(released, a)
		}
	}
	return released, errors.Join(errs...)
}

func (c *Claims) releaseOwned(ctx context.Context, u *unstructured.Unstructured, o Owner, dryRun bool) (netip.Addr, bool, error) {
	for range 3 {
		a, h, err := claimOf(u)
		switch {
		case err != nil:
			return netip.Addr{}, false, err
		case !h.Same(o) || h.UID != "" && h.UID != o.UID:
			return a, false, nil
		case dryRun:
			return a, true, nil
		}
		res, err := c.deleteExact(ctx, u)
		switch {
		case err != nil:
			return a, false, fmt.Errorf("release VIP %s of ServiceEntry %s: %w", a, o, err)
		case res == claimDeleted:
			return a, true, nil
		case res == claimGone:
			return a, false, nil
		}
		var found bool
		if _, u, found, err = c.get(ctx, a); err != nil || !found {
			return a, false, err
		}
	}
	return netip.Addr{}, false, fmt.Errorf("release the VIPs of ServiceEntry %s: claim %s keeps changing; try again", o, u.GetName())
}

// deleteResult is what deleteExact did.
type deleteResult int

const (
	claimDeleted deleteResult = iota // by this call
	claimGone                        // already
	claimChanged                     // since it was read: left alone
)

// deleteExact deletes u if it is unchanged since it was read: the delete
// carries u's UID and resourceVersion as preconditions.
func (c *Claims) deleteExact(ctx context.Context, u *unstructured.Unstructured) (deleteResult, error) {
	uid, rv := u.GetUID(), u.GetResourceVersion()
	err := c.client.Delete(ctx, u.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
	res := claimDeleted
	switch {
	case apierrors.IsNotFound(err):
		res = claimGone
	case apierrors.IsConflict(err):
		return claimChanged, nil
	case err != nil:
		return claimChanged, fmt.Errorf("delete VIPClaim %s: %w", u.GetName(), err)
	}
	if a, perr := netip.ParseAddr(u.GetName()); perr == nil {
		c.cache.forgetAddr(a)
	}
	return res, nil
}

// ReleaseAll deletes every claim o holds.
func (c *Claims) ReleaseAll(ctx context.Context, o Owner) error {
	if err := o.validate(); err != nil {
		return err
	}
	held, err := c.list(ctx, o)
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range held {
		if err := c.Release(ctx, h.Addr, o); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// HeldBy lists the claims o holds, in address order, asking the API server.
func (c *Claims) HeldBy(ctx context.Context, o Owner) ([]Held, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	return c.list(ctx, o)
}
