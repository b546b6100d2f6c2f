package webhook

import (
	"context"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/mutate"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/validate"
)

// rule decodes a DestinationRule request and checks that its host (r.host)
// is under the suffix; done is true when the response is final.
func (h *Handlers) rule(r *review) (resp admission.Response, verdict string, done bool) {
	if resp, verdict, done = h.decode(r, destinationRules); done {
		return resp, verdict, done
	}
	if r.host = validate.DestinationRuleHost(r.obj, r.policy.Suffix); r.host == "" {
		resp, verdict = allowed("host is not under ."+r.policy.Suffix, VerdictSkipped)
		return resp, verdict, true
	}
	return resp, "", false
}

// entryFor is the ServiceEntry of the rule's host visible from the rule's
// namespace, or nil when none is known.
func (h *Handlers) entryFor(r *review) *rules.Entry {
	if h.Index == nil || !h.Index.Synced() {
		return nil
	}
	return h.Index.Entry(r.host, r.namespace())
}

func (h *Handlers) mutateDestinationRule(_ context.Context, r *review) (admission.Response, string) {
	if resp, verdict, done := h.rule(r); done {
		return resp, verdict
	}
	// Sizes first: defaulting may not do more work than an admissible rule
	// could need. (The validator checks them itself, first.)
	spec, _ := r.obj.Object["spec"].(map[string]any)
	if errs := rules.CheckDestinationRuleSize(spec, field.NewPath("spec")); len(errs) > 0 {
		return r.deny(validate.DestinationRuleKind, errs, nil)
	}
	if !mutate.DefaultDestinationRule(r.obj, h.entryFor(r), r.policy.Suffix).Changed() {
		return allowed("", VerdictAllowed)
	}
	return r.patch()
}

func (h *Handlers) validateDestinationRule(_ context.Context, r *review) (admission.Response, string) {
	if resp, verdict, done := h.rule(r); done {
		return resp, verdict
	}
	errs, warnings := validate.ValidateDestinationRule(r.obj, h.entryFor(r), r.policy)
	if len(errs) == 0 {
		return admission.Allowed("").WithWarnings(warnings...), VerdictAllowed
	}
	return r.deny(validate.DestinationRuleKind, errs, warnings)
}
