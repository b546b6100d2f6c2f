package vip

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

// The metadata cache, over protobuf as the webhook builds it, knows who
// holds each claim from labels and annotations; a claim written by an older
// version (owner in the spec only) is known by its owner label until the
// repair loop completes it.
func TestMetadataCache(t *testing.T) {
	cleanClaims(t)
	setupRepair(t, context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cache := vip.NewMetadataCache(meta)
	go func() { _ = cache.Start(ctx) }()
	if err := cache.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	c := vip.NewClaims(dyn, rules.DefaultVIPSpace())
	current := vip.Owner{Namespace: repairNS, Name: "current", Host: "current.bar.global"}
	legacy := vip.Owner{Namespace: repairNS, Name: "legacy", Host: "legacy.bar.global"}
	ca, la := netip.MustParseAddr("240.5.0.1"), netip.MustParseAddr("240.5.0.2")
	if err := c.Claim(ctx, ca, current, false); err != nil {
		t.Fatal(err)
	}
	if err := c.Claim(ctx, la, legacy, false); err != nil {
		t.Fatal(err)
	}
	// Make the second claim look written by an older version.
	u, err := dyn.Resource(vip.GVR).Get(ctx, la.String(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u.SetAnnotations(nil)
	if _, err := dyn.Resource(vip.GVR).Update(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the cache to see both claims", func() bool {
		h, ok := cache.Holder(ca)
		l := cache.HeldBy(legacy)
		return ok && h == current && len(l) == 1 && l[0].Addr == la && l[0].Host == ""
	})
	// The legacy claim is still found (by owner label) and reused.
	cc := vip.NewClaims(dyn, rules.DefaultVIPSpace(), vip.WithCache(cache))
	if got, err := cc.Allocate(ctx, legacy, false); err != nil || got != la {
		t.Fatalf("Allocate(%v) with the cache = %v, %v; want the claim it holds, %s", legacy, got, err, la)
	}
	// Repair completes the claim of the stored entry.
	createSE(t, ctx, "legacy", legacy.Host, la.String())
	r, err := vip.NewRepairer(vip.RepairerOptions{Client: dyn, Space: rules.DefaultVIPSpace(), Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RepairOnce(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the cache to see the completed claim", func() bool {
		h, ok := cache.Holder(la)
		return ok && h.Same(legacy) && h.Host == legacy.Host
	})
}

func waitFor(t *testing.T, ctx context.Context, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
