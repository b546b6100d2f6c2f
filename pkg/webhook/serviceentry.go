package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/mutate"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/validate"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

// WarnNoDestinationRule is the warning for a hand-written `.global` entry
// that no DestinationRule gives the remote SNI.
const WarnNoDestinationRule = "no DestinationRule for %s: on Istio 1.14 and later the sidecar then sends the .global host as SNI, which the source gateway routes nowhere; create a DestinationRule with host %s and trafficPolicy.tls.mode ISTIO_MUTUAL (mesh-webhook fills the remote SNI of every port), or let kubectl mesh export write both"

// entry decodes a ServiceEntry request and checks that the `.global` rules
// apply and that its size is within them, then reads it (r.se) once for
// everything the handler asks of it; done is true when the response is
// final.
func (h *Handlers) entry(r *review) (resp admission.Response, verdict string, done bool) {
	if resp, verdict, done = h.decode(r, serviceEntries); done {
		return resp, verdict, done
	}
	if !rules.Applies(r.obj.Object, r.policy.Suffix) {
		resp, verdict = allowed("no ."+r.policy.Suffix+" host", VerdictSkipped)
		return resp, verdict, true
	}
	// Sizes first: nothing below may do more work than an admissible
	// entry could need.
	spec, _ := r.obj.Object["spec"].(map[string]any)
	if errs := rules.CheckServiceEntrySize(spec, field.NewPath("spec")); len(errs) > 0 {
		// Warn mode admits it untouched: it never blocks a write.
		resp, verdict = r.deny(validate.ServiceEntryKind, errs, nil)
		return resp, verdict, true
	}
	r.se = rules.ReadServiceEntry(r.obj.Object)
	return resp, "", false
}

func (r *review) owner() vip.Owner {
	return vip.Owner{Namespace: r.namespace(), Name: r.name(), UID: string(r.obj.GetUID()), Host: r.se.GlobalHost(r.policy.Suffix)}
}

// mutate is one pass: default, validate the defaulted entry, and only then
// (when it would be admitted) allocate its VIP.
func (h *Handlers) mutate(ctx context.Context, r *review) (admission.Response, string) {
	if resp, verdict, done := h.entry(r); done {
		return resp, verdict
	}
	var alloc mutate.AllocateFunc
	// An entry created with generateName has no name yet, and a claim
	// must name its holder: the validating handler denies it instead.
	if o := r.owner(); h.Claims != nil && o.Name != "" {
		alloc = func(ctx context.Context, host string) (netip.Addr, error) {
			o.Host = host
			start := time.Now()
			a, err := h.Claims.Allocate(ctx, o, r.dryRun())
			h.observeAllocation(start, err, r.dryRun())
			return a, err
		}
	}
	// Without an allocator Default cannot fail.
	res, _ := mutate.Default(ctx, r.obj, r.policy, nil)
	// A VIP is claimed only for an entry that would then be admitted, so
	// denied requests leave no claim behind (warn mode admits everything,
	// so it always allocates).
	var err error
	if alloc != nil && (r.policy.Mode == rules.ModeWarn || onlyAddressMissing(r.obj, r.policy)) {
		res.Address, err = mutate.Allocate(ctx, r.obj, r.se, r.policy, alloc)
	}
	if err != nil {
		if r.policy.Mode == rules.ModeWarn {
			// Warn mode must never block a write; the validating handler
			// reports the missing address as a warning.
			return admission.Allowed("").WithWarnings(err.Error()), VerdictWarned
		}
		h.Log.Error(err, "allocation failed", "namespace", r.req.Namespace, "name", r.req.Name)
		return errored(http.StatusInternalServerError, "%v; retry, or set spec.addresses to a free VIP", err)
	}
	if !res.Changed() {
		return allowed("", VerdictAllowed)
	}
	return r.patch()
}

func (h *Handlers) observeAllocation(start time.Time, err error, dryRun bool) {
	if h.Metrics == nil {
		return
	}
	h.Metrics.AllocationLatency.Observe(time.Since(start).Seconds())
	switch {
	case dryRun:
	case err != nil:
		h.Metrics.Claims.WithLabelValues("error").Inc()
	default:
		h.Metrics.Claims.WithLabelValues("allocated").Inc()
	}
}

// onlyAddressMissing reports whether the entry's only violation is its
// missing address.
func onlyAddressMissing(obj *unstructured.Unstructured, policy rules.Policy) bool {
	errs, _ := validate.ValidateServiceEntry(obj, policy, nil)
	addrs := field.NewPath("spec", "addresses").String()
	for _, e := range errs {
		if e.Field != addrs || e.Type != field.ErrorTypeRequired {
			return false
		}
	}
	return true
}

func (h *Handlers) validate(ctx context.Context, r *review) (admission.Response, string) {
	if r.req.Operation == admissionv1.Delete {
		return h.release(ctx, r)
	}
	if resp, verdict, done := h.entry(r); done {
		return resp, verdict
	}
	errs, warnings := validate.ValidateServiceEntry(r.obj, r.policy, nil)
	if r.name() == "" {
		errs = append(errs, field.Required(field.NewPath("metadata", "name"),
			"a ."+r.policy.Suffix+" ServiceEntry needs a name when it is created (not generateName): its VIP claim names the entry that holds it"))
	}
	dup, more := h.indexChecks(r)
	errs, warnings = append(errs, dup...), append(warnings, more...)
	warn := r.policy.Mode == rules.ModeWarn
	// Claims are only taken for an object that will be admitted, so a denied
	// request leaves nothing behind for the repair loop.
	if h.Claims != nil && (len(errs) == 0 || warn) {
		claimErrs, err := h.claim(ctx, r, errs)
		if err != nil {
			if !warn {
				h.Log.Error(err, "claim failed", "namespace", r.req.Namespace, "name", r.req.Name)
				return errored(http.StatusInternalServerError, "%v; retry", err)
			}
			warnings = append(warnings, err.Error())
		}
		errs = append(errs, claimErrs...)
	}
	if len(errs) == 0 {
		return admission.Allowed("").WithWarnings(warnings...), VerdictAllowed
	}
	return r.deny(validate.ServiceEntryKind, errs, warnings)
}

// indexChecks are the checks against the other objects of the cluster: one
// entry per host wherever both are visible, and a DestinationRule for a
// hand-written entry.
func (h *Handlers) indexChecks(r *review) (field.ErrorList, []string) {
	host := r.se.GlobalHost(r.policy.Suffix)
	if h.Index == nil || host == "" || !h.Index.Synced() {
		return nil, nil
	}
	ns, exportTo := r.namespace(), r.se.ExportTo
	var errs field.ErrorList
	for _, other := range h.Index.Entries(host) {
		if other.Namespace == ns && other.Name == r.name() {
			continue
		}
		if rules.VisibleTogether(ns, exportTo, other.Namespace, other.ExportTo) {
			errs = append(errs, field.Invalid(field.NewPath("spec", "hosts").Index(0), host, fmt.Sprintf(
				"%s is already held by ServiceEntry %s/%s, which is visible in the same namespaces; a sidecar would use only one of them: add this entry's endpoints to %s/%s (kubectl mesh export adds sources to it), or delete it first",
				host, other.Namespace, other.Name, other.Namespace, other.Name)))
			break
		}
	}
	var warnings []string
	if !r.se.Managed() && !h.Index.HasDestinationRule(host, ns, exportTo) {
		warnings = append(warnings, fmt.Sprintf(WarnNoDestinationRule, host, host))
	}
	return errs, warnings
}

// claim claims every valid address of the entry for it; addresses with
// field errors are skipped (validation already reported them).
func (h *Handlers) claim(ctx context.Context, r *review, known field.ErrorList) (field.ErrorList, error) {
	o := r.owner()
	fld := field.NewPath("spec", "addresses")
	var errs field.ErrorList
	for i, s := range r.se.Addresses {
		if hasErrorOn(known, fld.Index(i)) {
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !r.policy.Space.Contains(a) {
			continue
		}
		err = h.Claims.Claim(ctx, a, o, r.dryRun())
		var taken *vip.TakenError
		switch {
		case err == nil:
			h.countClaim("claimed", r.dryRun())
		case errors.As(err, &taken):
			h.countClaim("taken", false)
			errs = append(errs, field.Invalid(fld.Index(i), s, taken.Error()))
		default:
			h.countClaim("error", false)
			return errs, fmt.Errorf("claim %s for ServiceEntry %s: %w", a, o, err)
		}
	}
	return errs, nil
}

func (h *Handlers) countClaim(result string, dryRun bool) {
	if h.Metrics != nil && !dryRun {
		h.Metrics.Claims.WithLabelValues(result).Inc()
	}
}

// release frees the VIP claims of a deleted entry at once, so that its
// address can be used again right away; the repair loop stays the
// backstop. A delete is never refused: failing to release only delays the
// address until repair frees it.
func (h *Handlers) release(ctx context.Context, r *review) (admission.Response, string) {
	if err := checkKind(r.req, serviceEntries); err != nil {
		return errored(http.StatusBadRequest, "%v", err)
	}
	if h.Claims == nil || r.req.SubResource != "" {
		return allowed("", VerdictSkipped)
	}
	old, err := decodeRaw(r.req, r.req.OldObject.Raw, serviceEntries.kind)
	if err != nil {
		// Nothing to release from; never block a delete.
		return allowed("no old object to release claims of", VerdictSkipped)
	}
	r.obj = old
	if !rules.Applies(old.Object, r.policy.Suffix) {
		return allowed("no ."+r.policy.Suffix+" host", VerdictSkipped)
	}
	r.se = rules.ReadServiceEntry(old.Object)
	released, err := h.Claims.ReleaseOwned(ctx, r.owner(), r.dryRun())
	if err != nil {
		h.Log.Error(err, "releasing VIP claims failed; the repair loop will", "namespace", r.req.Namespace, "name", r.req.Name)
		h.countClaim("error", false)
		return admission.Allowed("").WithWarnings(fmt.Sprintf("the VIP of %s/%s is freed by mesh-webhook's repair loop within its grace period (release failed: %v)", r.namespace(), r.name(), err)), VerdictAllowed
	}
	for range released {
		h.countClaim("released", r.dryRun())
	}
	return allowed("", VerdictAllowed)
}

func hasErrorOn(errs field.ErrorList, fld *field.Path) bool {
	p := fld.String()
	for _, e := range errs {
		if e.Field == p {
			return true
		}
	}
	return false
}
