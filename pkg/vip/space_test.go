package vip

import (
	"context"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

func TestSetSpace(t *testing.T) {
	before, after := mustSpace(t, "240.0.0.0/28"), mustSpace(t, "241.0.0.0/28")
	f := newFake()
	c := NewClaims(f, before)
	ctx := context.Background()
	c.SetSpace(after)
	if got := c.Space(); got.String() != after.String() {
		t.Errorf("Space() = %s after SetSpace(%s)", got, after)
	}
	a, err := c.Allocate(ctx, foo, false)
	if err != nil || !after.Contains(a) {
		t.Fatalf("Allocate after SetSpace(%s) = %v, %v; want an address in it", after, a, err)
	}
	if err := c.Claim(ctx, before.At(1), bar, false); err == nil {
		t.Errorf("Claim(%s) outside the new space succeeded", before.At(1))
	}
	// What an owner holds in the old space is not reused: its entry gets an
	// address of the new one.
	c.SetSpace(before)
	old, err := c.Allocate(ctx, bar, false)
	if err != nil || !before.Contains(old) {
		t.Fatalf("Allocate(bar) in %s = %v, %v", before, old, err)
	}
	c.SetSpace(after)
	moved, err := c.Allocate(ctx, bar, false)
	if err != nil || !after.Contains(moved) {
		t.Errorf("Allocate(bar) after SetSpace(%s) = %v, %v; want an address in it, not %s", after, moved, err, old)
	}
}

// The repair loop sharing the webhook's Claims follows its space.
func TestRepairerFollowsSetSpace(t *testing.T) {
	before, after := mustSpace(t, "240.0.0.0/28"), mustSpace(t, "241.0.0.0/28")
	f := newFake([]runtime.Object{se("foo", "httpbin-bar", time.Hour, []string{"httpbin.bar.global"}, "241.0.0.5")}...)
	c := NewClaims(f, before)
	r, err := NewRepairer(RepairerOptions{Client: f, Claims: c})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if rep, err := r.RepairOnce(ctx); err != nil || len(rep.Adopted) != 0 {
		t.Fatalf("pass in %s = %+v, %v; want 241.0.0.5 ignored", before, rep, err)
	}
	c.SetSpace(after)
	if rep, err := r.RepairOnce(ctx); err != nil || len(rep.Adopted) != 1 || rep.Adopted[0].String() != "241.0.0.5" {
		t.Fatalf("pass after SetSpace(%s) = %+v, %v; want 241.0.0.5 adopted", after, rep, err)
	}
}

// SetSpace may run while allocations are under way (run with -race).
func TestSetSpaceConcurrently(t *testing.T) {
	spaces := []rules.VIPSpace{mustSpace(t, "240.0.0.0/24"), mustSpace(t, "241.0.0.0/24")}
	c := NewClaims(newFake(), spaces[0])
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 20 {
				if i == 0 {
					c.SetSpace(spaces[j%2])
					continue
				}
				o := Owner{Namespace: "ns", Name: "e", Host: "h.ns.global"}
				o.Name += string(rune('a'+i)) + string(rune('a'+j))
				a, err := c.Allocate(context.Background(), o, false)
				if err != nil || !spaces[0].Contains(a) && !spaces[1].Contains(a) {
					t.Errorf("Allocate(%v) = %v, %v", o, a, err)
				}
			}
		})
	}
	wg.Wait()
}
