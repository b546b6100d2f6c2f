package vip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

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
	space     rules.VIPSpace
	managedBy string
	maxProbes int
	cache     *Cache
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

// NewClaims returns Claims for the cluster behind client, allocating from
// space.
func NewClaims(client dynamic.Interface, space rules.VIPSpace, opts ...Option) *Claims {
	c := &Claims{client: client.Resource(GVR), space: space, managedBy: rules.ManagedByValue, maxProbes: DefaultMaxProbes}
	for _, opt := range opts {
		opt(c)
	}
	if c.maxProbes <= 0 {
		c.maxProbes = DefaultMaxProbes
	}
	return c
}

// Space is the address space Claims allocates from.
func (c *Claims) Space() rules.VIPSpace { return c.space }

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
// that host if any, otherwise the first of Space().Candidates(o.Host) whose
// claim it manages to create (AlreadyExists moves on to the next candidate).
// With dryRun nothing is written: the result is the address a real call
// would try to claim first, i.e. the first candidate not already claimed.
func (c *Claims) Allocate(ctx context.Context, o Owner, dryRun bool) (netip.Addr, error) {
	if err := o.validate(); err != nil {
		return netip.Addr{}, err
	}
	if o.Host == "" {
		return netip.Addr{}, fmt.Errorf("cannot allocate a VIP for ServiceEntry %s without a host", o)
	}
	if a, ok, err := c.held(ctx, o); err != nil || ok {
		return a, err
	}
	attempts := 0
	for a := range c.space.Candidates(o.Host) {
		if c.cache != nil {
			if h, taken := c.cache.Holder(a); taken && !h.Same(o) {
				continue
			}
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
			c.cache.observe(a, o)
			return a, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return netip.Addr{}, fmt.Errorf("claim VIP %s for ServiceEntry %s: %w", a, o, err)
		}
		// Taken; by o itself when a concurrent request for the same entry won.
		h, found, err := c.Holder(ctx, a)
		if err != nil {
			return netip.Addr{}, err
		}
		if found && h.Same(o) && strings.EqualFold(h.Host, o.Host) {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%w in %s for ServiceEntry %s after %d attempts; widen the VIP range or delete unused ServiceEntries (kubectl get vipclaims lists the addresses in use)",
		ErrExhausted, c.space, o, attempts)
}

// held finds a claim o already holds for o.Host. Through the cache once it
// has synced (verified on the API server), otherwise by label: before the
// sync an empty cache would make an entry's existing claim look missing.
func (c *Claims) held(ctx context.Context, o Owner) (netip.Addr, bool, error) {
	if c.cache != nil && c.cache.HasSynced() {
		for _, h := range c.cache.HeldBy(o) {
			if !strings.EqualFold(h.Host, o.Host) || !c.space.Contains(h.Addr) {
				continue
			}
			cur, found, err := c.Holder(ctx, h.Addr)
			if err != nil {
				return netip.Addr{}, false, err
			}
			if found && cur.Same(o) && strings.EqualFold(cur.Host, o.Host) {
				return h.Addr, true, nil
			}
		}
		return netip.Addr{}, false, nil
	}
	list, err := c.list(ctx, o)
	if err != nil {
		return netip.Addr{}, false, err
	}
	for _, h := range list {
		if strings.EqualFold(h.Host, o.Host) && c.space.Contains(h.Addr) {
			return h.Addr, true, nil
		}
	}
	return netip.Addr{}, false, nil
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
// ServiceEntry).
func (c *Claims) Acquire(ctx context.Context, addr netip.Addr, o Owner, dryRun bool) (created bool, err error) {
	if err := o.validate(); err != nil {
		return false, err
	}
	if !c.space.Contains(addr) {
		if _, err := rules.ParseVIP(addr.String(), c.space); err != nil {
			return false, fmt.Errorf("VIP %s %w", addr, err)
		}
		return false, fmt.Errorf("VIP %s is outside the VIP space %s", addr, c.space)
	}
	// A holder may release between our create and our get: try again then.
	for range 3 {
		if !dryRun {
			_, err := c.client.Create(ctx, newClaim(addr, o, c.managedBy), metav1.CreateOptions{})
			if err == nil {
				c.cache.observe(addr, o)
				return true, nil
			}
			if !apierrors.IsAlreadyExists(err) {
				return false, fmt.Errorf("claim VIP %s for ServiceEntry %s: %w", addr, o, err)
			}
		}
		h, found, err := c.Holder(ctx, addr)
		switch {
		case err != nil:
			return false, err
		case !found && dryRun:
			return false, nil
		case !found:
			continue
		case h.Same(o):
			return false, nil
		default:
			return false, &TakenError{Addr: addr, Holder: h}
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
	c.cache.observe(addr, h)
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
		done, err := c.deleteExact(ctx, u)
		if done || err != nil {
			return err
		}
	}
	return fmt.Errorf("release VIP %s of ServiceEntry %s: the claim keeps changing; try again", addr, o)
}

// deleteExact deletes u if it is unchanged. done is false when it changed
// (the caller looks again).
func (c *Claims) deleteExact(ctx context.Context, u *unstructured.Unstructured) (done bool, err error) {
	uid, rv := u.GetUID(), u.GetResourceVersion()
	err = c.client.Delete(ctx, u.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
	switch {
	case err == nil, apierrors.IsNotFound(err):
		if a, perr := netip.ParseAddr(u.GetName()); perr == nil {
			c.cache.forgetAddr(a)
		}
		return true, nil
	case apierrors.IsConflict(err):
		return false, nil
	default:
		return false, fmt.Errorf("delete VIPClaim %s: %w", u.GetName(), err)
	}
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
