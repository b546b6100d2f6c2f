package vip

import (
	"context"
	"maps"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

var (
	_ manager.LeaderElectionRunnable = (*Repairer)(nil)
	_ manager.Runnable               = (*Repairer)(nil)
	_ manager.LeaderElectionRunnable = (*Cache)(nil)
	_ EventRecorder                  = record.EventRecorder(nil)
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// se builds a ServiceEntry created age before epoch.
func se(ns, name string, age time.Duration, hosts []string, addrs ...string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "ServiceEntry",
		"metadata":   map[string]any{"namespace": ns, "name": name},
		"spec":       map[string]any{},
	}}
	u.SetUID(types.UID("se-" + ns + "-" + name))
	u.SetCreationTimestamp(metav1.NewTime(epoch.Add(-age)))
	h := make([]any, len(hosts))
	for i := range hosts {
		h[i] = hosts[i]
	}
	_ = unstructured.SetNestedSlice(u.Object, h, "spec", "hosts")
	if len(addrs) > 0 {
		a := make([]any, len(addrs))
		for i := range addrs {
			a[i] = addrs[i]
		}
		_ = unstructured.SetNestedSlice(u.Object, a, "spec", "addresses")
	}
	return u
}

// oldClaim is a claim created and last touched long before epoch.
func oldClaim(addr string, o Owner) *unstructured.Unstructured {
	u := claimObj(addr, o)
	u.SetCreationTimestamp(metav1.NewTime(epoch.Add(-24 * time.Hour)))
	return u
}

// value reads a counter or gauge.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if c := out.GetCounter(); c != nil {
		return c.GetValue()
	}
	return out.GetGauge().GetValue()
}

func TestRepairOnce(t *testing.T) {
	grace := time.Minute
	withUID := func(o Owner, uid string) Owner { o.UID = uid; return o }
	fooSE := func(addrs ...string) *unstructured.Unstructured {
		return se("foo", "httpbin-bar", time.Hour, []string{"httpbin.bar.global"}, addrs...)
	}
	fooOwner := withUID(foo, "se-foo-httpbin-bar")
	tests := map[string]struct {
		objs           []runtime.Object
		passes         []time.Duration // clock of each pass, after epoch
		reportOnly     bool
		wantClaims     map[string]string // address → holder "ns/name uid"
		wantRepairs    map[string]float64
		wantDuplicates float64
		wantEvents     []string // substrings, one per Event
	}{
		"claim of a live entry is kept and gets its UID": {
			objs:        []runtime.Object{fooSE("240.0.0.2"), oldClaim("240.0.0.2", foo)},
			passes:      []time.Duration{0},
			wantClaims:  map[string]string{"240.0.0.2": "foo/httpbin-bar se-foo-httpbin-bar"},
			wantRepairs: map[string]float64{ActionUIDSet: 1},
		},
		"claim of an older version gets the owner annotations": {
			objs:        []runtime.Object{fooSE("240.0.0.2"), legacyClaim("240.0.0.2", fooOwner)},
			passes:      []time.Duration{0, grace},
			wantClaims:  map[string]string{"240.0.0.2": "foo/httpbin-bar se-foo-httpbin-bar"},
			wantRepairs: map[string]float64{ActionOwnerMetaSet: 1},
		},
		"claim of an older version gets the owner annotations and its UID in one write": {
			objs:        []runtime.Object{fooSE("240.0.0.2"), legacyClaim("240.0.0.2", foo)},
			passes:      []time.Duration{0},
			wantClaims:  map[string]string{"240.0.0.2": "foo/httpbin-bar se-foo-httpbin-bar"},
			wantRepairs: map[string]float64{ActionOwnerMetaSet: 1, ActionUIDSet: 1},
		},
		"orphan of a deleted entry survives the grace period": {
			objs:       []runtime.Object{oldClaim("240.0.0.2", fooOwner)},
			passes:     []time.Duration{0, grace - time.Second},
			wantClaims: map[string]string{"240.0.0.2": "foo/httpbin-bar se-foo-httpbin-bar"},
		},
		"orphan of a deleted entry is deleted after the grace period": {
			objs:        []runtime.Object{oldClaim("240.0.0.2", fooOwner)},
			passes:      []time.Duration{0, grace},
			wantClaims:  map[string]string{},
			wantRepairs: map[string]float64{ActionOrphanDeleted: 1},
		},
		"one late pass alone deletes nothing": {
			objs:       []runtime.Object{oldClaim("240.0.0.2", fooOwner)},
			passes:     []time.Duration{10 * grace},
			wantClaims: map[string]string{"240.0.0.2": "foo/httpbin-bar se-foo-httpbin-bar"},
		},
		"claim of an entry that no longer lists the address is an orphan": {
			objs:        []runtime.Object{fooSE("240.0.0.3"), oldClaim("240.0.0.2", fooOwner), oldClaim("240.0.0.3", fooOwner)},
			passes:      []time.Duration{0, grace},
			wantClaims:  map[string]string{"240.0.0.3": "foo/httpbin-bar se-foo-httpbin-bar"},
			wantRepairs: map[string]float64{ActionOrphanDeleted: 1},
		},
		"brownfield entry is adopted": {
			objs:        []runtime.Object{fooSE("240.0.0.2")},
			passes:      []time.Duration{0},
			wantClaims:  map[string]string{"240.0.0.2": "foo/httpbin-bar se-foo-httpbin-bar"},
			wantRepairs: map[string]float64{ActionAdopted: 1},
		},
		"entries without a .global host, or with addresses outside the space, are left alone": {
			objs: []runtime.Object{
				se("foo", "plain", time.Hour, []string{"example.com"}, "240.0.0.2"),
				se("foo", "istio", time.Hour, []string{"a.b.global"}, "240.240.0.1", "10.0.0.1", "240.0.0.0/24"),
			},
			passes:     []time.Duration{0},
			wantClaims: map[string]string{},
		},
		"duplicate: the oldest entry gets the claim, every entry an Event": {
			objs: []runtime.Object{
				se("bar", "young", time.Minute, []string{"young.bar.global"}, "240.0.0.7"),
				se("bar", "old", time.Hour, []string{"old.bar.global"}, "240.0.0.7"),
			},
			passes:         []time.Duration{0, grace, 2 * grace},
			wantClaims:     map[string]string{"240.0.0.7": "bar/old se-bar-old"},
			wantRepairs:    map[string]float64{ActionAdopted: 1},
			wantDuplicates: 1,
			wantEvents: []string{
				"Warning DuplicateVIP VIP 240.0.0.7 is also used by ServiceEntry bar/young",
				"Warning DuplicateVIP VIP 240.0.0.7 is also used by ServiceEntry bar/old",
			},
		},
		"report only writes nothing": {
			objs: []runtime.Object{
				oldClaim("240.0.0.2", fooOwner),
				se("bar", "young", time.Minute, []string{"young.bar.global"}, "240.0.0.7"),
				se("bar", "old", time.Hour, []string{"old.bar.global"}, "240.0.0.7"),
			},
			passes:         []time.Duration{0, grace},
			reportOnly:     true,
			wantClaims:     map[string]string{"240.0.0.2": "foo/httpbin-bar se-foo-httpbin-bar"},
			wantDuplicates: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFake(tc.objs...)
			rec := record.NewFakeRecorder(10)
			reg := prometheus.NewRegistry()
			clk := clocktesting.NewFakeClock(epoch)
			r, err := NewRepairer(RepairerOptions{
				Client: f, Recorder: rec, Registry: reg, Space: rules.DefaultVIPSpace(),
				Grace: grace, ReportOnly: tc.reportOnly, Clock: clk,
			})
			if err != nil {
				t.Fatal(err)
			}
			var rep RepairReport
			for _, at := range tc.passes {
				clk.SetTime(epoch.Add(at))
				if rep, err = r.RepairOnce(context.Background()); err != nil {
					t.Fatalf("pass at +%s: %v", at, err)
				}
			}
			got := map[string]string{}
			l, err := f.Resource(GVR).List(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for i := range l.Items {
				_, h, err := claimOf(&l.Items[i])
				if err != nil {
					t.Fatal(err)
				}
				got[l.Items[i].GetName()] = h.String() + " " + h.UID
				// What the metadata cache reads agrees with the spec.
				if m, sum := ownerOfMeta(&l.Items[i]); !tc.reportOnly && (m != h || sum != sumOf(h)) {
					t.Errorf("claim %s: owner from labels and annotations %+v, from spec %+v", l.Items[i].GetName(), m, h)
				}
			}
			if !maps.Equal(got, tc.wantClaims) {
				t.Errorf("claims = %v, want %v (last report %+v)", got, tc.wantClaims, rep)
			}
			if tc.reportOnly && writes(f) != 0 {
				t.Errorf("report-only passes wrote: %v", f.Actions())
			}
			for _, action := range []string{ActionOrphanDeleted, ActionAdopted, ActionUIDSet, ActionOwnerMetaSet} {
				if got, want := value(t, r.repairs.WithLabelValues(action)), tc.wantRepairs[action]; got != want {
					t.Errorf("mesh_webhook_vip_repairs_total{action=%q} = %v, want %v", action, got, want)
				}
			}
			if got := value(t, r.duplicates); got != tc.wantDuplicates {
				t.Errorf("mesh_webhook_vip_duplicates = %v, want %v", got, tc.wantDuplicates)
			}
			if got := value(t, r.claimCount); got != float64(len(tc.wantClaims)) && !tc.reportOnly {
				t.Errorf("mesh_webhook_vip_claims = %v, want %d", got, len(tc.wantClaims))
			}
			close(rec.Events)
			var events []string
			for e := range rec.Events {
				events = append(events, e)
			}
			if len(events) != len(tc.wantEvents) {
				t.Fatalf("events = %q, want %d like %q", events, len(tc.wantEvents), tc.wantEvents)
			}
			for _, want := range tc.wantEvents {
				found := false
				for _, e := range events {
					found = found || strings.Contains(e, want)
				}
				if !found {
					t.Errorf("no event like %q in %q", want, events)
				}
			}
		})
	}
}

func TestRepairerKeepsAClaimWhoseEntryComesBack(t *testing.T) {
	f := newFake(oldClaim("240.0.0.2", foo))
	clk := clocktesting.NewFakeClock(epoch)
	r, err := NewRepairer(RepairerOptions{Client: f, Space: rules.DefaultVIPSpace(), Grace: time.Minute, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if rep, err := r.RepairOnce(ctx); err != nil || len(rep.Orphans) != 1 {
		t.Fatalf("first pass = %+v, %v; want one orphan", rep, err)
	}
	// The entry is stored (admission happened before it was persisted).
	if _, err := f.Resource(rules.ServiceEntryGVR).Namespace("foo").Create(ctx, se("foo", "httpbin-bar", 0, []string{"httpbin.bar.global"}, "240.0.0.2"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.SetTime(epoch.Add(time.Hour))
	rep, err := r.RepairOnce(ctx)
	if err != nil || len(rep.Deleted) != 0 || len(rep.Orphans) != 0 || rep.Claims != 1 {
		t.Fatalf("pass after the entry appeared = %+v, %v; want the claim kept", rep, err)
	}
	// Gone again: the grace period starts afresh.
	if err := f.Resource(rules.ServiceEntryGVR).Namespace("foo").Delete(ctx, "httpbin-bar", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.SetTime(epoch.Add(2 * time.Hour))
	if rep, err := r.RepairOnce(ctx); err != nil || len(rep.Deleted) != 0 {
		t.Fatalf("first pass after the entry went = %+v, %v; want no deletion yet", rep, err)
	}
}

func TestNewRepairerValidates(t *testing.T) {
	tests := map[string]RepairerOptions{
		"no client":      {Space: rules.DefaultVIPSpace()},
		"no space":       {Client: newFake()},
		"negative grace": {Client: newFake(), Space: rules.DefaultVIPSpace(), Grace: -time.Second},
		"grace other than its Claims'": {
			Client: newFake(), Grace: time.Minute,
			Claims: NewClaims(newFake(), rules.DefaultVIPSpace(), WithRepairGrace(2*time.Minute)),
		},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := NewRepairer(opts); err == nil {
				t.Errorf("NewRepairer(%+v) succeeded", opts)
			}
		})
	}
	// Two repairers in one process share the metrics instead of failing.
	reg := prometheus.NewRegistry()
	for range 2 {
		if _, err := NewRepairer(RepairerOptions{Client: newFake(), Space: rules.DefaultVIPSpace(), Registry: reg}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRepairerStartStops(t *testing.T) {
	f := newFake(se("foo", "httpbin-bar", time.Hour, []string{"httpbin.bar.global"}, "240.0.0.2"))
	r, err := NewRepairer(RepairerOptions{Client: f, Space: rules.DefaultVIPSpace(), Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Start(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, found, _ := r.claims.Holder(ctx, netip.MustParseAddr("240.0.0.2")); found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Start did not adopt the entry")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
