package mutate_test

import (
	"testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook/config"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook/webhooktest"
)

// FuzzMutateAdmissionReview sends raw AdmissionReview bodies to the
// mutating handler: whatever the bytes, the answer is a well-formed
// AdmissionReview whose patch only adds, never a panic. Seeds: testdata/fuzz.
func FuzzMutateAdmissionReview(f *testing.F) {
	mutate, _, _ := webhooktest.Handlers(config.ModeDeny)
	f.Fuzz(func(t *testing.T, body []byte) {
		webhooktest.CheckAdmission(t, mutate, body)
	})
}
