package vip

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli/clitest/gethook"

	"github.com/go-logr/logr/testr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

// A repair pass found a claim orphaned a grace period ago and is about to
// delete it when the webhook reuses it for an entry re-created under the
// same name. The reuse touches the claim, and the API server refuses the
// repair's delete, whose resourceVersion precondition no longer holds.
func TestRepairCannotDeleteAReusedClaim(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	setupRepair(t, ctx)
	grace := time.Minute
	clk := clocktesting.NewFakeClock(time.Now())
	space := rules.DefaultVIPSpace()
	webhook := vip.NewClaims(dyn, space, vip.WithClock(clk), vip.WithRepairGrace(grace))
	o := vip.Owner{Namespace: repairNS, Name: "recreated", Host: "recreated.bar.global"}
	addr := netip.MustParseAddr("240.6.0.1")
	if err := webhook.Claim(ctx, addr, o, false); err != nil {
		t.Fatal(err)
	}
	hooked := &gethook.Client{Interface: dyn, GVR: rules.ServiceEntryGVR}
	r, err := vip.NewRepairer(vip.RepairerOptions{Client: hooked, Space: space, Grace: grace, Clock: clk, Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := r.RepairOnce(ctx); err != nil || len(rep.Orphans) != 1 {
		t.Fatalf("first pass = %+v, %v; want the claim suspected", rep, err)
	}
	clk.Step(grace)
	var reused netip.Addr
	var reuseErr error
	hooked.Before = func() { reused, reuseErr = webhook.Allocate(ctx, o, false) }
	rep, err := r.RepairOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if reuseErr != nil || reused != addr {
		t.Fatalf("Allocate during the pass = %v, %v; want the claim it holds, %s", reused, reuseErr, addr)
	}
	u, err := dyn.Resource(vip.GVR).Get(ctx, addr.String(), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the claim reused during the repair pass is gone: %v (report %+v)", err, rep)
	}
	if got, want := u.GetAnnotations()[vip.TouchedAnnotation], clk.Now().UTC().Format(time.RFC3339); got != want {
		t.Errorf("%s = %q, want %q", vip.TouchedAnnotation, got, want)
	}
}
