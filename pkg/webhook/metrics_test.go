package webhook_test

import (
	"context"
	"slices"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook/config"
)

func counterValue(t *testing.T, m *webhook.Metrics, labels ...string) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Admissions.WithLabelValues(labels...).Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.GetCounter().GetValue()
}

// TestMetricLabelsOnlyKnownValues sends a crafted admission request whose
// operation is arbitrary client text: it must be counted under "other",
// never as a label value of its own (one series per distinct string).
func TestMetricLabelsOnlyKnownValues(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := webhook.NewMetrics(reg)
	h := &webhook.Handlers{Config: config.Default(), Metrics: m, Log: logr.Discard()}
	crafted := []admissionv1.Operation{"EVIL", `CREATE"} 1` + "\n" + `injected{a="b`, "create", ""}
	for _, op := range crafted {
		req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID:       "crafted",
			Operation: op,
			Kind:      metav1.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "ServiceEntry"},
			Resource:  metav1.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "serviceentries"},
			Object:    runtime.RawExtension{Raw: []byte(`{"spec":{"hosts":["a.b.global"]}}`)},
		}}
		for _, handler := range []admission.Handler{h.Mutator(), h.Validator()} {
			_ = handler.Handle(context.Background(), req) // only the counting matters
		}
	}
	// Labels set directly are constrained too.
	m.Admissions.WithLabelValues("mutate", "PATCH", "made-up").Inc()
	m.Claims.WithLabelValues("made-up").Inc()

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string][]string{
		"operation": {"CREATE", "UPDATE", "DELETE", "CONNECT", webhook.LabelOther},
		"verdict":   {webhook.VerdictSkipped, webhook.VerdictAllowed, webhook.VerdictPatched, webhook.VerdictWarned, webhook.VerdictDenied, webhook.VerdictErrored, webhook.LabelOther},
		"result":    {"allocated", "claimed", "taken", "error", webhook.LabelOther},
	}
	other := 0.0
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if want, ok := known[l.GetName()]; ok && !slices.Contains(want, l.GetValue()) {
					t.Errorf("%s has label %s=%q, not one of %v", f.GetName(), l.GetName(), l.GetValue(), want)
				}
				if f.GetName() == webhook.MetricsPrefix+"admissions_total" && l.GetName() == "operation" && l.GetValue() == webhook.LabelOther {
					other += metric.GetCounter().GetValue()
				}
			}
		}
	}
	// Each crafted request went to both handlers, plus the direct one.
	if want := float64(2*len(crafted) + 1); other != want {
		t.Errorf("admissions counted under operation=%q: %v, want %v (the crafted requests must be counted, not dropped)", webhook.LabelOther, other, want)
	}
}

func TestOperationLabel(t *testing.T) {
	for op, want := range map[admissionv1.Operation]string{
		admissionv1.Create: "CREATE", admissionv1.Update: "UPDATE", admissionv1.Delete: "DELETE", admissionv1.Connect: "CONNECT",
		"create": webhook.LabelOther, "": webhook.LabelOther, "Create": webhook.LabelOther,
	} {
		if got := webhook.OperationLabel(op); got != want {
			t.Errorf("OperationLabel(%q) = %q, want %q", op, got, want)
		}
	}
}
