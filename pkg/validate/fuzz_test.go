package validate_test

import (
	"testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook/config"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook/webhooktest"
)

// FuzzValidateAdmissionReview sends raw AdmissionReview bodies to the
// validating handler in both modes: whatever the bytes, the answer is a
// well-formed AdmissionReview, never a panic. Seeds: testdata/fuzz.
func FuzzValidateAdmissionReview(f *testing.F) {
	_, deny, _ := webhooktest.Handlers(config.ModeDeny)
	_, warn, _ := webhooktest.Handlers(config.ModeWarn)
	f.Fuzz(func(t *testing.T, body []byte) {
		webhooktest.CheckAdmission(t, deny, body)
		webhooktest.CheckAdmission(t, warn, body)
	})
}
