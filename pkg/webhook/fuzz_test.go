package webhook_test

import (
	"testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook/webhooktest"
)

// FuzzAdmissionReview sends raw AdmissionReview bodies to all four
// admission handlers in both modes, with a `.global` entry in the index so
// that the DestinationRule checks that need it run too: whatever the bytes,
// every answer is a well-formed AdmissionReview, never a panic. One seed
// corpus: testdata/fuzz/FuzzAdmissionReview (ServiceEntry and
// DestinationRule reviews, deletes, malformed bodies).
func FuzzAdmissionReview(f *testing.F) {
	var sets []webhooktest.Set
	for _, mode := range []rules.Mode{rules.ModeDeny, rules.ModeWarn} {
		s := webhooktest.Handlers(mode)
		s.Index.AddEntry(webhook.EntryRef{Entry: rules.Entry{
			Namespace: "foo", Name: "httpbin-bar", Host: "httpbin.bar.global", Ports: []uint32{8000},
			EndpointLabels: []map[string]string{{"cluster": "cluster2"}},
		}})
		sets = append(sets, s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, s := range sets {
			webhooktest.CheckAdmission(t, s.Mutate, body)
			webhooktest.CheckAdmission(t, s.Validate, body)
			webhooktest.CheckAdmission(t, s.MutateRule, body)
			webhooktest.CheckAdmission(t, s.ValidateRule, body)
		}
	})
}
