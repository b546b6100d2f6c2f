package vip

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

const repairNS = "repair"

// createSE stores a ServiceEntry directly (no webhook in this lab).
func createSE(t *testing.T, ctx context.Context, name, host, addr string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "ServiceEntry",
		"metadata":   map[string]any{"namespace": repairNS, "name": name},
		"spec": map[string]any{
			"hosts":      []any{host},
			"addresses":  []any{addr},
			"location":   "MESH_INTERNAL",
			"resolution": "DNS",
			"ports":      []any{map[string]any{"name": "http", "number": int64(8000), "protocol": "HTTP"}},
			"endpoints":  []any{map[string]any{"address": "192.0.2.10", "ports": map[string]any{"http": int64(15443)}}},
		},
	}}
	out, err := dyn.Resource(rules.ServiceEntryGVR).Namespace(repairNS).Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create ServiceEntry %s: %v", name, err)
	}
	return out
}

func setupRepair(t *testing.T, ctx context.Context) {
	t.Helper()
	cleanClaims(t)
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: repairNS}}, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dyn.Resource(rules.ServiceEntryGVR).Namespace(repairNS).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			t.Errorf("delete ServiceEntries: %v", err)
		}
	})
}

func eventRecorder(t *testing.T) record.EventRecorder {
	t.Helper()
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	t.Cleanup(b.Shutdown)
	return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "mesh-webhook"})
}

func holder(t *testing.T, ctx context.Context, addr string) (vip.Owner, bool) {
	t.Helper()
	h, found, err := vip.NewClaims(dyn, rules.DefaultVIPSpace()).Holder(ctx, netip.MustParseAddr(addr))
	if err != nil {
		t.Fatal(err)
	}
	return h, found
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func TestRepair(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	setupRepair(t, ctx)
	grace := 2 * time.Second
	reg := prometheus.NewRegistry()
	r, err := vip.NewRepairer(vip.RepairerOptions{
		Client: dyn, Recorder: eventRecorder(t), Registry: reg,
		Space: rules.DefaultVIPSpace(), Grace: grace, Log: testr.New(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	claims := vip.NewClaims(dyn, rules.DefaultVIPSpace())

	// An orphan: claimed at admission, but the entry never got stored.
	orphan := vip.Owner{Namespace: repairNS, Name: "never-stored", Host: "never.stored.global"}
	if err := claims.Claim(ctx, netip.MustParseAddr("240.3.0.1"), orphan, false); err != nil {
		t.Fatal(err)
	}
	// A live entry with its claim, as the webhook leaves them.
	live := vip.Owner{Namespace: repairNS, Name: "live", Host: "live.bar.global"}
	if err := claims.Claim(ctx, netip.MustParseAddr("240.3.0.2"), live, false); err != nil {
		t.Fatal(err)
	}
	liveSE := createSE(t, ctx, "live", live.Host, "240.3.0.2")
	// Brownfield: an entry stored before any claim existed.
	brown := createSE(t, ctx, "brownfield", "brown.bar.global", "240.3.0.3")
	// Two pre-existing entries sharing a VIP; the older one sorts last by
	// name, so only its age can make it the holder.
	old := createSE(t, ctx, "z-old", "old.bar.global", "240.3.0.4")
	time.Sleep(1100 * time.Millisecond) // creationTimestamp has second precision
	createSE(t, ctx, "a-young", "young.bar.global", "240.3.0.4")

	if _, err := r.RepairOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, found := holder(t, ctx, "240.3.0.1"); !found {
		t.Fatal("the orphan claim was deleted on first sight, before its grace period")
	}
	if h, found := holder(t, ctx, "240.3.0.2"); !found || h.UID != string(liveSE.GetUID()) {
		t.Errorf("live claim = %+v, %v; want it kept with the entry's UID %s", h, found, liveSE.GetUID())
	}
	if h, found := holder(t, ctx, "240.3.0.3"); !found || h.Name != "brownfield" || h.UID != string(brown.GetUID()) {
		t.Errorf("brownfield claim = %+v, %v; want it adopted for repair/brownfield (uid %s)", h, found, brown.GetUID())
	}
	if h, found := holder(t, ctx, "240.3.0.4"); !found || h.Name != "z-old" || h.UID != string(old.GetUID()) {
		t.Errorf("shared VIP claim = %+v, %v; want it held by the older entry repair/z-old", h, found)
	}
	if got := gauge(t, reg, "mesh_webhook_vip_duplicates"); got != 1 {
		t.Errorf("mesh_webhook_vip_duplicates = %v, want 1", got)
	}
	for _, name := range []string{"z-old", "a-young"} {
		waitEvent(t, ctx, name, "240.3.0.4")
	}

	time.Sleep(grace)
	rep, err := r.RepairOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, found := holder(t, ctx, "240.3.0.1"); found || len(rep.Deleted) != 1 {
		t.Errorf("orphan claim still there after two sightings %s apart (report %+v)", grace, rep)
	}
	if got := gauge(t, reg, "mesh_webhook_vip_claims"); got != 3 {
		t.Errorf("mesh_webhook_vip_claims = %v, want 3", got)
	}
}

func waitEvent(t *testing.T, ctx context.Context, seName, addr string) {
	t.Helper()
	for {
		l, err := kube.CoreV1().Events(repairNS).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + seName + ",reason=" + vip.ReasonDuplicateVIP})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range l.Items {
			if e.Type == corev1.EventTypeWarning && e.InvolvedObject.Kind == "ServiceEntry" && strings.Contains(e.Message, addr) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no %s Warning Event on ServiceEntry %s/%s", vip.ReasonDuplicateVIP, repairNS, seName)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// The repair loop runs as a leader-elected runnable of a controller-runtime
// manager, as in mesh-webhook.
func TestRepairUnderManager(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	setupRepair(t, ctx)
	mgr, err := manager.New(cfg, manager.Options{
		LeaderElection:          true,
		LeaderElectionID:        "mesh-webhook-vip-repair-e2e",
		LeaderElectionNamespace: "default",
		Metrics:                 metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:  "0",
		Logger:                  testr.New(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := vip.NewRepairer(vip.RepairerOptions{Client: dyn, Space: rules.DefaultVIPSpace(), Interval: 200 * time.Millisecond, Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Add(r); err != nil {
		t.Fatal(err)
	}
	mctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	se := createSE(t, ctx, "late", "late.bar.global", "240.3.1.1")
	for {
		if h, found := holder(t, ctx, "240.3.1.1"); found && h.UID == string(se.GetUID()) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the leader-elected repair loop did not adopt repair/late")
		case <-time.After(100 * time.Millisecond):
		}
	}
}
