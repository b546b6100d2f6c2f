package webhook_test

import (
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook"
)

func counterValue(t *testing.T, m *webhook.Metrics, labels ...string) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Admissions.WithLabelValues(labels...).Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.GetCounter().GetValue()
}
