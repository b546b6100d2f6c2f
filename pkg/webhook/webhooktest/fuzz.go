package webhooktest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr"
	jsonpatch "gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook"
)

// Set is the four admission handlers of mesh-webhook over in-memory claims
// and index, as HTTP handlers with panic recovery off so that a fuzzer sees
// every panic.
type Set struct {
	Mutate, Validate, MutateRule, ValidateRule http.Handler
	Claims                                     *Claims
	Index                                      *Index
	Handlers                                   *webhook.Handlers
}

// Handlers returns the handler set of mode.
func Handlers(mode rules.Mode) Set {
	cfg := rules.DefaultPolicy()
	cfg.Mode = mode
	claims := NewClaims(rules.DefaultVIPSpace())
	index := &Index{}
	h := &webhook.Handlers{Config: cfg, Claims: claims, Index: index, Metrics: webhook.NewMetrics(nil), Log: logr.Discard()}
	wrap := func(a admission.Handler) http.Handler {
		return &admission.Webhook{Handler: a, RecoverPanic: ptr.To(false)}
	}
	return Set{
		Mutate: wrap(h.Mutator()), Validate: wrap(h.Validator()),
		MutateRule: wrap(h.DestinationRuleMutator()), ValidateRule: wrap(h.DestinationRuleValidator()),
		Claims: claims, Index: index, Handlers: h,
	}
}

// CheckAdmission posts body (a raw AdmissionReview, possibly malformed) to h
// and checks what any answer must satisfy: an AdmissionReview with a
// response, a status code for every refusal, and for an allowed mutation a
// JSON patch that applies to the request's object.
func CheckAdmission(t testing.TB, h http.Handler, body []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &ar); err != nil || ar.Response == nil {
		t.Fatalf("body %q: answer %q is not an AdmissionReview (%v)", body, rec.Body.String(), err)
	}
	resp := ar.Response
	if !resp.Allowed && (resp.Result == nil || resp.Result.Code < 400 || resp.Result.Message == "") {
		t.Fatalf("body %q: refusal without a code and message: %+v", body, resp.Result)
	}
	if len(resp.Patch) == 0 {
		return
	}
	if !resp.Allowed {
		t.Fatalf("body %q: a refusal carries a patch", body)
	}
	var ops []jsonpatch.JsonPatchOperation
	if err := json.Unmarshal(resp.Patch, &ops); err != nil {
		t.Fatalf("body %q: patch %s is not a JSON patch: %v", body, resp.Patch, err)
	}
	for _, op := range ops {
		if op.Operation != "add" && op.Operation != "replace" {
			t.Fatalf("body %q: patch op %s %s; the mutator only fills what is missing", body, op.Operation, op.Path)
		}
		if len(op.Path) >= 7 && op.Path[:7] == "/status" {
			t.Fatalf("body %q: patch touches status", body)
		}
	}
}
