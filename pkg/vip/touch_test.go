package vip

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli/clitest/gethook"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

const testGrace = time.Minute

// touched reads the touch annotation of the claim of addr ("" if none).
func touchedAt(t *testing.T, f dynamic.Interface, addr string) string {
	t.Helper()
	u, err := f.Resource(GVR).Get(context.Background(), addr, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("claim %s: %v", addr, err)
	}
	return u.GetAnnotations()[TouchedAnnotation]
}

func TestReuseTouchesAStaleClaim(t *testing.T) {
	space := rules.DefaultVIPSpace()
	addr := space.Candidate(foo.Host)
	tests := map[string]struct {
		age       time.Duration // of the claim's last touch
		dryRun    bool
		wantTouch bool
	}{
		"fresh claim: no write":               {age: testGrace/2 - time.Second},
		"stale claim is touched":              {age: testGrace / 2, wantTouch: true},
		"dry run never writes":                {age: 10 * testGrace, dryRun: true},
		"claim of long ago is touched to now": {age: 10 * testGrace, wantTouch: true},
	}
	calls := map[string]func(c *Claims, dryRun bool) error{
		"Allocate": func(c *Claims, dryRun bool) error {
			got, err := c.Allocate(context.Background(), foo, dryRun)
			if err == nil && got != addr {
				t.Errorf("Allocate reused %s, want %s", got, addr)
			}
			return err
		},
		"Claim": func(c *Claims, dryRun bool) error { return c.Claim(context.Background(), addr, foo, dryRun) },
	}
	for call, do := range calls {
		for name, tc := range tests {
			t.Run(call+"/"+name, func(t *testing.T) {
				clk := clocktesting.NewFakeClock(epoch)
				existing := claimObj(addr.String(), foo)
				existing.SetCreationTimestamp(metav1.NewTime(epoch.Add(-tc.age)))
				f := strict(newFake(existing), clk)
				c := NewClaims(f, space, WithClock(clk), WithRepairGrace(testGrace))
				if err := do(c, tc.dryRun); err != nil {
					t.Fatal(err)
				}
				want := ""
				if tc.wantTouch {
					want = epoch.Format(time.RFC3339)
				}
				if got := touchedAt(t, f, addr.String()); got != want {
					t.Errorf("%s of a claim last touched %s ago: touched = %q, want %q (actions %v)", call, tc.age, got, want, f.Actions())
				}
				wantWrites := map[bool]int{true: 1}[tc.wantTouch]
				if call == "Claim" && !tc.dryRun {
					wantWrites++ // the create that found the claim
				}
				if n := writes(f); n != wantWrites {
					t.Errorf("%s made %d writes, want %d: %v", call, n, wantWrites, f.Actions())
				}
			})
		}
	}
}

// The touch is what keeps a reused claim from a repair pass that found it
// orphaned: the repair reads the claim, finds its entry gone and, after the
// grace period, deletes it with the resourceVersion it read; the webhook
// reuses the claim in between (the entry is being re-created under the same
// name). Without the touch the delete succeeds and the new entry is
// admitted with an address nobody holds.
func TestRepairCannotDeleteAClaimReusedDuringItsPass(t *testing.T) {
	space := rules.DefaultVIPSpace()
	addr := space.Candidate(foo.Host)
	clk := clocktesting.NewFakeClock(epoch)
	f := strict(newFake(oldClaim(addr.String(), foo)), clk)
	webhook := NewClaims(f, space, WithClock(clk), WithRepairGrace(testGrace))

	var reused netip.Addr
	var reuseErr error
	hooked := &gethook.Client{Interface: f, GVR: rules.ServiceEntryGVR}
	r, err := NewRepairer(RepairerOptions{Client: hooked, Space: space, Grace: testGrace, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if rep, err := r.RepairOnce(ctx); err != nil || len(rep.Orphans) != 1 {
		t.Fatalf("first pass = %+v, %v; want the claim suspected", rep, err)
	}
	clk.Step(testGrace)
	// The repair has listed the claim and reads the entry once more before
	// deleting: the webhook admits the re-created entry right then.
	hooked.Before = func() { reused, reuseErr = webhook.Allocate(ctx, foo, false) }
	rep, err := r.RepairOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if reuseErr != nil || reused != addr {
		t.Fatalf("webhook Allocate during the pass = %v, %v; want the claim it holds, %s", reused, reuseErr, addr)
	}
	if _, found, err := webhook.Holder(ctx, addr); err != nil || !found {
		t.Fatalf("the claim the webhook just reused was deleted by the repair pass (report %+v, err %v)", rep, err)
	}
	if len(rep.Deleted) != 0 {
		t.Errorf("report says deleted %v", rep.Deleted)
	}
	// The next pass sees a claim touched within the grace period: not an
	// orphan, even though the entry is not stored yet.
	clk.Step(testGrace / 2)
	hooked.Before = nil
	if rep, err := r.RepairOnce(ctx); err != nil || len(rep.Orphans) != 0 || len(rep.Deleted) != 0 {
		t.Errorf("pass after the touch = %+v, %v; want no orphan", rep, err)
	}
}

// A claim touched within the grace period is not counted as an orphan, and
// the grace period of a suspect starts afresh after the touch.
func TestRepairSparesARecentlyTouchedClaim(t *testing.T) {
	space := rules.DefaultVIPSpace()
	addr := space.Candidate(foo.Host)
	clk := clocktesting.NewFakeClock(epoch)
	f := strict(newFake(oldClaim(addr.String(), foo)), clk)
	webhook := NewClaims(f, space, WithClock(clk), WithRepairGrace(testGrace))
	r, err := NewRepairer(RepairerOptions{Client: f, Space: space, Grace: testGrace, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pass := func(at time.Duration) RepairReport {
		t.Helper()
		clk.SetTime(epoch.Add(at))
		rep, err := r.RepairOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := pass(0); len(rep.Orphans) != 1 {
		t.Fatalf("first pass = %+v; want the claim suspected", rep)
	}
	clk.SetTime(epoch.Add(testGrace / 2))
	if _, err := webhook.Allocate(ctx, foo, false); err != nil {
		t.Fatal(err)
	}
	if rep := pass(testGrace); len(rep.Orphans) != 0 || len(rep.Deleted) != 0 {
		t.Errorf("pass a grace period after the suspicion, half of one after the touch = %+v; want no orphan", rep)
	}
	if rep := pass(testGrace/2 + testGrace); len(rep.Orphans) != 1 || len(rep.Deleted) != 0 {
		t.Errorf("pass a grace period after the touch = %+v; want a new suspect, not a deletion", rep)
	}
	if rep := pass(testGrace/2 + 2*testGrace); len(rep.Deleted) != 1 {
		t.Errorf("pass two grace periods after the touch = %+v; want the orphan deleted", rep)
	}
}
