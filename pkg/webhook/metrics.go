package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
)

// MetricsPrefix starts every metric mesh-webhook exports.
const MetricsPrefix = "mesh_webhook_"

// Verdicts an admission ends with, the "verdict" label of the admissions
// counter.
const (
	VerdictSkipped = "skipped" // no .global host: nothing to do
	VerdictAllowed = "allowed" // admitted unchanged
	VerdictPatched = "patched" // admitted with defaults filled in
	VerdictWarned  = "warned"  // violations admitted as warnings (warn mode)
	VerdictDenied  = "denied"  // violations rejected with 422
	VerdictErrored = "errored" // bad request or internal failure
)

// Metrics are the admission metrics of the handlers.
type Metrics struct {
	Admissions        *prometheus.CounterVec
	AllocationLatency prometheus.Histogram
	Claims            *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests and benchmarks).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricsPrefix + "admissions_total",
			Help: "Admission requests by webhook (mutate, validate), operation and verdict.",
		}, []string{"webhook", "operation", "verdict"}),
		AllocationLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    MetricsPrefix + "vip_allocation_duration_seconds",
			Help:    "Time to allocate (claim) a VIP for a ServiceEntry without addresses.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		Claims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricsPrefix + "claims_total",
			Help: "VIP claims made at admission by result (allocated, claimed, taken, error), dry runs excluded.",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.Admissions, m.AllocationLatency, m.Claims)
	}
	return m
}
