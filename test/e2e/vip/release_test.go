package vip

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

// DELETE of an entry releases its claims at once: the address is free for
// another entry right away, while the claim of a newer entry of the same
// name (another UID) stays.
func TestReleaseOwned(t *testing.T) {
	cleanClaims(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := vip.NewClaims(dyn, rules.DefaultVIPSpace())
	gone := vip.Owner{Namespace: "rel", Name: "httpbin", UID: "11111111-1111-1111-1111-111111111111", Host: "httpbin.rel.global"}
	newer := gone
	newer.UID = "22222222-2222-2222-2222-222222222222"
	a, b := netip.MustParseAddr("240.4.0.1"), netip.MustParseAddr("240.4.0.2")
	if err := c.Claim(ctx, a, gone, false); err != nil {
		t.Fatal(err)
	}
	if err := c.Claim(ctx, b, newer, false); err != nil {
		t.Fatal(err)
	}
	dry, err := c.ReleaseOwned(ctx, gone, true)
	if err != nil || !slices.Equal(dry, []netip.Addr{a}) {
		t.Fatalf("ReleaseOwned dry run = %v, %v; want [%s]", dry, err, a)
	}
	if _, found, err := c.Holder(ctx, a); err != nil || !found {
		t.Fatalf("the dry run released %s (%v)", a, err)
	}
	released, err := c.ReleaseOwned(ctx, gone, false)
	if err != nil || !slices.Equal(released, []netip.Addr{a}) {
		t.Fatalf("ReleaseOwned = %v, %v; want [%s]", released, err, a)
	}
	other := vip.Owner{Namespace: "rel", Name: "other", Host: "other.rel.global"}
	if err := c.Claim(ctx, a, other, false); err != nil {
		t.Fatalf("Claim(%s) for another entry right after the release: %v", a, err)
	}
	err = c.Claim(ctx, b, other, false)
	if te, ok := errors.AsType[*vip.TakenError](err); !ok || te.Holder.UID != newer.UID {
		t.Errorf("Claim(%s) for another entry = %v; want it still held by the newer %s (uid %s)", b, err, newer, newer.UID)
	}
}
