package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/mutate"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/validate"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook/config"
)

// Paths the handlers are served at; the webhook configurations point there.
const (
	MutatePath   = "/mutate-serviceentries"
	ValidatePath = "/validate-serviceentries"
)

// MaxObjectBytes bounds the object a handler decodes: etcd's default request
// limit, so nothing larger could be stored anyway.
const MaxObjectBytes = 3 << 19 // 1.5 MiB

const (
	serviceEntryGroup    = "networking.istio.io"
	serviceEntryKind     = "ServiceEntry"
	serviceEntryResource = "serviceentries"
)

// Handlers holds what both admission handlers share.
type Handlers struct {
	Config  config.Config
	Claims  Claims // nil: no VIP allocation or claim checks
	Metrics *Metrics
	Log     logr.Logger
}

// Mutator is the mutating admission handler.
func (h *Handlers) Mutator() admission.Handler { return admission.HandlerFunc(h.mutate) }

// Validator is the validating admission handler.
func (h *Handlers) Validator() admission.Handler { return admission.HandlerFunc(h.validate) }

func (h *Handlers) count(webhook string, req admission.Request, verdict string) {
	if h.Metrics != nil {
		h.Metrics.Admissions.WithLabelValues(webhook, string(req.Operation), verdict).Inc()
	}
}

// decode checks that req is a CREATE or UPDATE of a ServiceEntry and
// decodes its object. A nil object with a nil response means "nothing to
// do": the caller allows the request.
func (h *Handlers) decode(webhook string, req admission.Request) (*unstructured.Unstructured, *admission.Response) {
	fail := func(code int32, format string, a ...any) (*unstructured.Unstructured, *admission.Response) {
		h.count(webhook, req, VerdictErrored)
		r := admission.Errored(code, fmt.Errorf(format, a...))
		return nil, &r
	}
	switch req.Operation {
	case admissionv1.Create, admissionv1.Update:
	case admissionv1.Delete, admissionv1.Connect:
		// No new object to check; claims of deleted entries are released by
		// the repair loop.
		h.count(webhook, req, VerdictSkipped)
		r := admission.Allowed(fmt.Sprintf("mesh-webhook does not check %s operations", req.Operation))
		return nil, &r
	default:
		return fail(http.StatusBadRequest, "admission request %q has operation %q; want CREATE or UPDATE", req.UID, req.Operation)
	}
	if req.Kind.Group != serviceEntryGroup || req.Kind.Kind != serviceEntryKind ||
		(req.Resource.Resource != "" && (req.Resource.Group != serviceEntryGroup || req.Resource.Resource != serviceEntryResource)) {
		return fail(http.StatusBadRequest, "mesh-webhook handles %s %s only, got kind %s resource %s; fix the webhook configuration rules",
			serviceEntryGroup, serviceEntryResource, req.Kind.String(), req.Resource.String())
	}
	if req.SubResource != "" {
		h.count(webhook, req, VerdictSkipped)
		r := admission.Allowed("mesh-webhook does not check the " + req.SubResource + " subresource")
		return nil, &r
	}
	raw := req.Object.Raw
	switch {
	case len(raw) == 0:
		return fail(http.StatusBadRequest, "admission request %s carries no object", req.UID)
	case len(raw) > MaxObjectBytes:
		return fail(http.StatusBadRequest, "ServiceEntry %s/%s is %d bytes, more than the %d a cluster can store; remove what it does not need", req.Namespace, req.Name, len(raw), MaxObjectBytes)
	}
	var m map[string]any
	if err := utiljson.Unmarshal(raw, &m); err != nil {
		return fail(http.StatusBadRequest, "ServiceEntry %s/%s is not a JSON object: %v", req.Namespace, req.Name, err)
	}
	if m == nil {
		return fail(http.StatusBadRequest, "ServiceEntry %s/%s is not a JSON object", req.Namespace, req.Name)
	}
	obj := &unstructured.Unstructured{Object: m}
	if !validate.Applies(obj, h.Config.Suffix) {
		h.count(webhook, req, VerdictSkipped)
		r := admission.Allowed("no ." + h.Config.Suffix + " host")
		return nil, &r
	}
	return obj, nil
}

func owner(req admission.Request, obj *unstructured.Unstructured, suffix string) Owner {
	o := Owner{Namespace: req.Namespace, Name: req.Name, UID: string(obj.GetUID()), Host: validate.GlobalHost(obj, suffix)}
	if o.Namespace == "" {
		o.Namespace = obj.GetNamespace()
	}
	if o.Name == "" {
		o.Name = obj.GetName()
	}
	return o
}

func isDryRun(req admission.Request) bool { return req.DryRun != nil && *req.DryRun }

func (h *Handlers) mutate(ctx context.Context, req admission.Request) admission.Response {
	const webhook = "mutate"
	obj, resp := h.decode(webhook, req)
	if resp != nil {
		return *resp
	}
	var alloc mutate.AllocateFunc
	// An entry created with generateName has no name yet, and a claim
	// must name its holder: the validating handler denies it instead.
	if o := owner(req, obj, h.Config.Suffix); h.Claims != nil && o.Name != "" {
		dry := isDryRun(req)
		alloc = func(ctx context.Context, host string) (netip.Addr, error) {
			o.Host = host
			start := time.Now()
			a, err := h.Claims.Allocate(ctx, o, dry)
			if h.Metrics != nil {
				h.Metrics.AllocationLatency.Observe(time.Since(start).Seconds())
				if !dry {
					if err != nil {
						h.Metrics.Claims.WithLabelValues("error").Inc()
					} else {
						h.Metrics.Claims.WithLabelValues("allocated").Inc()
					}
				}
			}
			return a, err
		}
	}
	// Fill the defaults first; a VIP is claimed only for an entry that would
	// then be admitted, so denied requests leave no claim behind (warn mode
	// admits everything, so it always allocates).
	res, err := mutate.Default(ctx, obj, h.Config, nil)
	if err == nil && alloc != nil && (h.Config.Mode == config.ModeWarn || onlyAddressMissing(obj, h.Config)) {
		var r mutate.Result
		r, err = mutate.Default(ctx, obj, h.Config, alloc)
		res.Address = r.Address
	}
	if err != nil {
		if h.Config.Mode == config.ModeWarn {
			// Warn mode must never block a write; the validating handler
			// reports the missing address as a warning.
			h.count(webhook, req, VerdictWarned)
			return admission.Allowed("").WithWarnings(err.Error())
		}
		h.count(webhook, req, VerdictErrored)
		h.Log.Error(err, "allocation failed", "namespace", req.Namespace, "name", req.Name)
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("%w; retry, or set spec.addresses to a free VIP", err))
	}
	if !res.Changed() {
		h.count(webhook, req, VerdictAllowed)
		return admission.Allowed("")
	}
	mutated, err := utiljson.Marshal(obj.Object)
	if err != nil {
		h.count(webhook, req, VerdictErrored)
		return admission.Errored(http.StatusInternalServerError, err)
	}
	h.count(webhook, req, VerdictPatched)
	return admission.PatchResponseFromRaw(req.Object.Raw, mutated)
}

// onlyAddressMissing reports whether the entry's only violation is its
// missing address.
func onlyAddressMissing(obj *unstructured.Unstructured, cfg config.Config) bool {
	errs, _ := validate.ValidateServiceEntry(obj, cfg, nil)
	addrs := field.NewPath("spec", "addresses").String()
	for _, e := range errs {
		if e.Field != addrs || e.Type != field.ErrorTypeRequired {
			return false
		}
	}
	return true
}

func (h *Handlers) validate(ctx context.Context, req admission.Request) admission.Response {
	const webhook = "validate"
	obj, resp := h.decode(webhook, req)
	if resp != nil {
		return *resp
	}
	errs, warnings := validate.ValidateServiceEntry(obj, h.Config, nil)
	if owner(req, obj, h.Config.Suffix).Name == "" {
		errs = append(errs, field.Required(field.NewPath("metadata", "name"),
			"a ."+h.Config.Suffix+" ServiceEntry needs a name when it is created (not generateName): its VIP claim names the entry that holds it"))
	}
	warn := h.Config.Mode == config.ModeWarn
	// Claims are only taken for an object that will be admitted, so a denied
	// request leaves nothing behind for the repair loop.
	if h.Claims != nil && (len(errs) == 0 || warn) {
		claimErrs, err := h.claim(ctx, req, obj, errs)
		if err != nil {
			if warn {
				warnings = append(warnings, err.Error())
			} else {
				h.count(webhook, req, VerdictErrored)
				h.Log.Error(err, "claim failed", "namespace", req.Namespace, "name", req.Name)
				return admission.Errored(http.StatusInternalServerError, fmt.Errorf("%w; retry", err))
			}
		}
		errs = append(errs, claimErrs...)
	}
	if len(errs) == 0 {
		h.count(webhook, req, VerdictAllowed)
		return admission.Allowed("").WithWarnings(warnings...)
	}
	if warn {
		h.count(webhook, req, VerdictWarned)
		for _, e := range errs {
			warnings = append(warnings, e.Error())
		}
		return admission.Allowed("").WithWarnings(warnings...)
	}
	h.count(webhook, req, VerdictDenied)
	return Denied(owner(req, obj, h.Config.Suffix).Name, errs).WithWarnings(warnings...)
}

// claim claims every valid address of obj for it; addresses with field
// errors are skipped (validation already reported them).
func (h *Handlers) claim(ctx context.Context, req admission.Request, obj *unstructured.Unstructured, known field.ErrorList) (field.ErrorList, error) {
	o := owner(req, obj, h.Config.Suffix)
	fld := field.NewPath("spec", "addresses")
	var errs field.ErrorList
	for i, s := range validate.Addresses(obj) {
		if hasErrorOn(known, fld.Index(i)) {
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !h.Config.Space.Contains(a) {
			continue
		}
		err = h.Claims.Claim(ctx, a, o, isDryRun(req))
		var taken *TakenError
		switch {
		case err == nil:
			if h.Metrics != nil && !isDryRun(req) {
				h.Metrics.Claims.WithLabelValues("claimed").Inc()
			}
		case errors.As(err, &taken):
			if h.Metrics != nil {
				h.Metrics.Claims.WithLabelValues("taken").Inc()
			}
			errs = append(errs, field.Invalid(fld.Index(i), s, taken.Error()))
		default:
			if h.Metrics != nil {
				h.Metrics.Claims.WithLabelValues("error").Inc()
			}
			return errs, fmt.Errorf("claim %s for ServiceEntry %s: %w", a, o, err)
		}
	}
	return errs, nil
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

// Denied is the 422 response for a ServiceEntry with violations: the
// API server passes its status, with every cause and its field path, to the
// client.
func Denied(name string, errs field.ErrorList) admission.Response {
	var st metav1.Status
	var se *apierrors.StatusError
	if errors.As(validate.NewInvalid(name, errs), &se) {
		st = se.ErrStatus
	}
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &st}}
}
