package webhook

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
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

// LabelOther replaces a label value that is not one of the known ones.
const LabelOther = "other"

// Metrics are the admission metrics of the handlers.
type Metrics struct {
	Admissions        *prometheus.CounterVec
	AllocationLatency prometheus.Histogram
	Claims            *prometheus.CounterVec
}

// knownOnly returns a label constraint that keeps the known values and maps
// every other value to LabelOther. Label values that come from a request
// (the operation above all: an admission review is client input) must not
// grow the number of series without bound.
func knownOnly(known ...string) prometheus.LabelConstraint {
	return func(v string) string {
		if slices.Contains(known, v) {
			return v
		}
		return LabelOther
	}
}

// OperationLabel is the "operation" label of an admission: its operation
// if Kubernetes defines it, LabelOther otherwise.
func OperationLabel(op admissionv1.Operation) string {
	return knownOnly(string(admissionv1.Create), string(admissionv1.Update), string(admissionv1.Delete), string(admissionv1.Connect))(string(op))
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests and benchmarks). The operation, verdict and result
// labels only take known values, whatever the caller passes.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Admissions: prometheus.V2.NewCounterVec(prometheus.CounterVecOpts{
			CounterOpts: prometheus.CounterOpts{
				Name: MetricsPrefix + "admissions_total",
				Help: "Admission requests by webhook (mutate, validate), operation and verdict.",
			},
			VariableLabels: prometheus.ConstrainedLabels{
				{Name: "webhook"},
				{Name: "operation", Constraint: func(v string) string { return OperationLabel(admissionv1.Operation(v)) }},
				{Name: "verdict", Constraint: knownOnly(VerdictSkipped, VerdictAllowed, VerdictPatched, VerdictWarned, VerdictDenied, VerdictErrored)},
			},
		}),
		AllocationLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    MetricsPrefix + "vip_allocation_duration_seconds",
			Help:    "Time to allocate (claim) a VIP for a ServiceEntry without addresses.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		Claims: prometheus.V2.NewCounterVec(prometheus.CounterVecOpts{
			CounterOpts: prometheus.CounterOpts{
				Name: MetricsPrefix + "claims_total",
				Help: "VIP claims made or freed at admission by result (allocated, claimed, taken, released, error), dry runs excluded.",
			},
			VariableLabels: prometheus.ConstrainedLabels{
				{Name: "result", Constraint: knownOnly("allocated", "claimed", "taken", "released", "error")},
			},
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Admissions, m.AllocationLatency, m.Claims)
	}
	return m
}

// metricsServerOptions serves the metrics behind the API server's
// authentication (TokenReview) and authorization (SubjectAccessReview of
// GET on the /metrics non-resource URL) over TLS, unless MetricsSecure is
// off: then plain HTTP, for loopback addresses (the lab) only.
func (o *Options) metricsServerOptions() metricsserver.Options {
	opts := metricsserver.Options{BindAddress: o.MetricsAddr}
	if o.MetricsSecure {
		opts.SecureServing = true
		opts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return opts
}
