package webhook_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook/webhooktest"
)

// benchAdmissions posts one review per iteration (built by body) to h over
// the full HTTP handler (decode, policy, claims, encode) and reports
// admissions per second; run with -cpu 1 for the per-core figure:
//
//	go test -run '^$' -bench Admission -cpu 1 ./pkg/webhook
func benchAdmissions(b *testing.B, h http.Handler, body func(i int) []byte) {
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = body(i)
	}
	rec := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(bodies[i]))
		req.Header.Set("Content-Type", "application/json")
		rec.Body.Reset()
		h.ServeHTTP(rec, req)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "admissions/s")
}

func named(obj string, i int) []byte {
	o := strings.Replace(obj, `"name":"httpbin-min"`, fmt.Sprintf(`"name":"se-%d"`, i), 1)
	o = strings.Replace(o, `"name":"httpbin-bar"`, fmt.Sprintf(`"name":"se-%d"`, i), 1)
	o = strings.Replace(o, `httpbin.bar.global`, fmt.Sprintf(`s%d.bar.global`, i), 1)
	return webhooktest.Review(admissionv1.Create, "foo", fmt.Sprintf("se-%d", i), []byte(o), false)
}

// BenchmarkMutateAdmission: an entry without addresses, defaulted and given
// a fresh VIP each time.
func BenchmarkMutateAdmission(b *testing.B) {
	hs := webhooktest.Handlers(rules.ModeDeny)
	benchAdmissions(b, hs.Mutate, func(i int) []byte { return named(minimal, i) })
}

// BenchmarkValidateAdmission: a complete entry whose VIP gets claimed.
func BenchmarkValidateAdmission(b *testing.B) {
	hs := webhooktest.Handlers(rules.ModeDeny)
	benchAdmissions(b, hs.Validate, func(i int) []byte {
		o := strings.Replace(seed, `240.0.0.2`, fmt.Sprintf("241.%d.%d.%d", i>>16&255, i>>8&255, i&255), 1)
		return named(o, i)
	})
}

// BenchmarkDeniedAdmission: an entry with several violations, denied with
// every cause.
func BenchmarkDeniedAdmission(b *testing.B) {
	hs := webhooktest.Handlers(rules.ModeDeny)
	bad := strings.Replace(external, `"resolution":"DNS"`, `"resolution":"NONE"`, 1)
	benchAdmissions(b, hs.Validate, func(i int) []byte { return named(bad, i) })
}

// BenchmarkSkippedAdmission: a non-.global entry (normally kept away by
// matchConditions).
func BenchmarkSkippedAdmission(b *testing.B) {
	hs := webhooktest.Handlers(rules.ModeDeny)
	benchAdmissions(b, hs.Validate, func(i int) []byte { return named(local, i) })
}

// BenchmarkOversizedAdmission: the 1,000-port × 1,000-endpoint entry,
// refused by the size limits before any defaulting (each handler, deny
// mode); compare BenchmarkMutateAdmission for an ordinary entry.
func BenchmarkOversizedAdmission(b *testing.B) {
	body := webhooktest.Review(admissionv1.Create, "foo", "big", []byte(oversized(1000, 1000)), false)
	hs := webhooktest.Handlers(rules.ModeDeny)
	for name, h := range map[string]http.Handler{"mutate": hs.Mutate, "validate": hs.Validate} {
		b.Run(name, func(b *testing.B) {
			benchAdmissions(b, h, func(int) []byte { return body })
		})
	}
}
