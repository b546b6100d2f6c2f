package webhook

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook/config"
)

func TestReloaderKeepsLastGoodPolicy(t *testing.T) {
	base := config.NewOptions()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	base.AddFlags(fs)
	if err := fs.Parse([]string{"--mode=warn"}); err != nil {
		t.Fatal(err)
	}
	var applied []rules.Policy
	rec := events.NewFakeRecorder(10)
	r := &Reloader{
		Namespace: "mesh-system", Name: config.ConfigMapName, Base: base, Recorder: rec,
		Metrics: NewReloadMetrics(nil), Log: logr.Discard(),
		Apply: func(_ context.Context, p rules.Policy) error { applied = append(applied, p); return nil },
	}
	cm := func(data map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "mesh-system", Name: config.ConfigMapName}, Data: data}
	}
	r.Update(t.Context(), nil)
	r.Update(t.Context(), cm(map[string]string{config.KeyGatewayPorts: "15443,31443", config.KeyMode: "deny"}))
	if len(applied) != 2 || !slices.Equal(applied[1].AllowedGatewayPorts, []uint32{15443, 31443}) {
		t.Fatalf("applied %+v; want the defaults, then gateway ports 15443,31443", applied)
	}
	if applied[1].Mode != rules.ModeWarn {
		t.Errorf("mode %s: the --mode flag must win over the ConfigMap", applied[1].Mode)
	}
	// A bad ConfigMap is refused as a whole.
	r.Update(t.Context(), cm(map[string]string{config.KeyGatewayPorts: "15443,99999", config.KeyVIPRange: "241.0.0.0/8"}))
	if len(applied) != 2 {
		t.Fatalf("a bad ConfigMap was applied: %+v", applied[len(applied)-1])
	}
	if got := testutil.ToFloat64(r.Metrics.LastSuccess); got != 0 {
		t.Errorf("last reload successful = %v after a bad ConfigMap", got)
	}
	if got := testutil.ToFloat64(r.Metrics.Reloads.WithLabelValues("invalid")); got != 1 {
		t.Errorf("invalid reloads = %v", got)
	}
	var evs []string
	for len(rec.Events) > 0 {
		evs = append(evs, <-rec.Events)
	}
	if len(evs) != 2 || !strings.Contains(evs[1], "Warning "+ReasonConfigInvalid) || !strings.Contains(evs[1], "99999") {
		t.Errorf("events %q; want the applied one, then a warning naming the bad value", evs)
	}
	// The same policy again applies nothing.
	r.Update(t.Context(), cm(map[string]string{config.KeyGatewayPorts: "15443, 31443"}))
	if len(applied) != 2 || testutil.ToFloat64(r.Metrics.LastSuccess) != 1 {
		t.Errorf("an unchanged policy was applied again, or did not count as good")
	}
}
