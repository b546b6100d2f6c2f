package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// Paths the handlers are served at; the webhook configurations point there.
const (
	MutatePath              = "/mutate-serviceentries"
	ValidatePath            = "/validate-serviceentries"
	MutateDestinationRules  = "/mutate-destinationrules"
	ValidateDestinationRule = "/validate-destinationrules"
)

// MaxObjectBytes bounds the object a handler decodes: etcd's default request
// limit, so nothing larger could be stored anyway.
const MaxObjectBytes = 3 << 19 // 1.5 MiB

// DefaultDeadline is how long one admission may work: below the webhook
// configurations' 5 s timeout, so that a slow API server yields an answer
// that says so instead of the API server's timeout.
const DefaultDeadline = 4 * time.Second

// resource is a kind the handlers admit.
type resource struct {
	group, kind, resource string
}

var (
	serviceEntries   = resource{"networking.istio.io", "ServiceEntry", "serviceentries"}
	destinationRules = resource{"networking.istio.io", "DestinationRule", "destinationrules"}
)

// Handlers holds what the admission handlers share.
type Handlers struct {
	// Config is the policy until SetPolicy replaces it.
	Config rules.Policy
	Claims Claims // nil: no VIP allocation or claim checks
	// Index knows the cluster's `.global` ServiceEntries and
	// DestinationRules; nil: the checks that need it are skipped.
	Index   Index
	Metrics *Metrics
	Log     logr.Logger
	// Deadline bounds the work of one admission (default DefaultDeadline).
	Deadline time.Duration

	current atomic.Pointer[rules.Policy]
}

// Policy is the policy in force.
func (h *Handlers) Policy() rules.Policy {
	if p := h.current.Load(); p != nil {
		return *p
	}
	return h.Config
}

// SetPolicy replaces the policy for the admissions that start after it.
func (h *Handlers) SetPolicy(p rules.Policy) { h.current.Store(&p) }

// Mutator is the mutating admission handler of ServiceEntries.
func (h *Handlers) Mutator() admission.Handler { return h.handler("mutate", h.mutate) }

// Validator is the validating admission handler of ServiceEntries (CREATE
// and UPDATE are checked, DELETE releases the entry's VIP).
func (h *Handlers) Validator() admission.Handler { return h.handler("validate", h.validate) }

// DestinationRuleMutator fills the tls mode and remote SNIs of
// DestinationRules of `.global` hosts.
func (h *Handlers) DestinationRuleMutator() admission.Handler {
	return h.handler("mutate-destinationrule", h.mutateDestinationRule)
}

// DestinationRuleValidator checks DestinationRules of `.global` hosts.
func (h *Handlers) DestinationRuleValidator() admission.Handler {
	return h.handler("validate-destinationrule", h.validateDestinationRule)
}

// review is one admission being answered.
type review struct {
	req     admission.Request
	webhook string
	policy  rules.Policy
	obj     *unstructured.Unstructured
	// se is obj read once, for a ServiceEntry within the size limits.
	se rules.ServiceEntry
	// host is a DestinationRule's `.global` host.
	host string
}

func (r *review) dryRun() bool { return r.req.DryRun != nil && *r.req.DryRun }

// handler wraps fn with the deadline and the verdict metric.
func (h *Handlers) handler(webhook string, fn func(context.Context, *review) (admission.Response, string)) admission.Handler {
	return admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		d := h.Deadline
		if d <= 0 {
			d = DefaultDeadline
		}
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		resp, verdict := fn(ctx, &review{req: req, webhook: webhook, policy: h.Policy()})
		if h.Metrics != nil {
			h.Metrics.Admissions.WithLabelValues(webhook, OperationLabel(req.Operation), verdict).Inc()
		}
		return resp
	})
}

func errored(code int32, format string, a ...any) (admission.Response, string) {
	return admission.Errored(code, fmt.Errorf(format, a...)), VerdictErrored
}

func allowed(msg string, verdict string) (admission.Response, string) {
	return admission.Allowed(msg), verdict
}

// checkKind refuses a request for a kind the handler does not serve: the
// webhook configuration is wrong.
func checkKind(req admission.Request, want resource) error {
	if req.Kind.Group != want.group || req.Kind.Kind != want.kind ||
		(req.Resource.Resource != "" && (req.Resource.Group != want.group || req.Resource.Resource != want.resource)) {
		return fmt.Errorf("this mesh-webhook path handles %s %s only, got kind %s resource %s; fix the webhook configuration rules",
			want.group, want.resource, req.Kind.String(), req.Resource.String())
	}
	return nil
}

// decodeRaw decodes an admitted object; raw is req.Object or, for DELETE,
// req.OldObject.
func decodeRaw(req admission.Request, raw []byte, kind string) (*unstructured.Unstructured, error) {
	switch {
	case len(raw) == 0:
		return nil, fmt.Errorf("admission request %s carries no object", req.UID)
	case len(raw) > MaxObjectBytes:
		return nil, fmt.Errorf("%s %s/%s is %d bytes, more than the %d a cluster can store; remove what it does not need", kind, req.Namespace, req.Name, len(raw), MaxObjectBytes)
	}
	var m map[string]any
	if err := utiljson.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s %s/%s is not a JSON object: %w", kind, req.Namespace, req.Name, err)
	}
	if m == nil {
		return nil, fmt.Errorf("%s %s/%s is not a JSON object", kind, req.Namespace, req.Name)
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// decode checks that r is a CREATE or UPDATE of want and decodes its
// object. done is true when the response is final (skipped or refused).
func (h *Handlers) decode(r *review, want resource) (resp admission.Response, verdict string, done bool) {
	req := r.req
	switch req.Operation {
	case admissionv1.Create, admissionv1.Update:
	case admissionv1.Delete, admissionv1.Connect:
		resp, verdict = allowed(fmt.Sprintf("mesh-webhook does not check %s operations here", req.Operation), VerdictSkipped)
		return resp, verdict, true
	default:
		resp, verdict = errored(http.StatusBadRequest, "admission request %q has operation %q; want CREATE or UPDATE", req.UID, req.Operation)
		return resp, verdict, true
	}
	if err := checkKind(req, want); err != nil {
		resp, verdict = errored(http.StatusBadRequest, "%v", err)
		return resp, verdict, true
	}
	if req.SubResource != "" {
		resp, verdict = allowed("mesh-webhook does not check the "+req.SubResource+" subresource", VerdictSkipped)
		return resp, verdict, true
	}
	obj, err := decodeRaw(req, req.Object.Raw, want.kind)
	if err != nil {
		resp, verdict = errored(http.StatusBadRequest, "%v", err)
		return resp, verdict, true
	}
	r.obj = obj
	return resp, "", false
}

// deny answers a request with violations: 422 in deny mode; in warn mode
// the violations become warnings and the request is admitted.
func (r *review) deny(gk schema.GroupKind, errs field.ErrorList, warnings []string) (admission.Response, string) {
	if r.policy.Mode == rules.ModeWarn {
		for _, e := range errs {
			warnings = append(warnings, e.Error())
		}
		return admission.Allowed("").WithWarnings(warnings...), VerdictWarned
	}
	return Denied(gk, r.name(), errs).WithWarnings(warnings...), VerdictDenied
}

// name is the admitted object's name (the request's, else the object's).
func (r *review) name() string {
	if r.req.Name != "" || r.obj == nil {
		return r.req.Name
	}
	return r.obj.GetName()
}

// namespace is the admitted object's namespace.
func (r *review) namespace() string {
	if r.req.Namespace != "" || r.obj == nil {
		return r.req.Namespace
	}
	return r.obj.GetNamespace()
}

// patch answers with the changes made to r.obj.
func (r *review) patch() (admission.Response, string) {
	mutated, err := utiljson.Marshal(r.obj.Object)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err), VerdictErrored
	}
	return admission.PatchResponseFromRaw(r.req.Object.Raw, mutated), VerdictPatched
}

// Denied is the 422 response for an object with violations: the API server
// passes its status, with every cause and its field path, to the client.
func Denied(gk schema.GroupKind, name string, errs field.ErrorList) admission.Response {
	var st metav1.Status
	var se *apierrors.StatusError
	if errors.As(apierrors.NewInvalid(gk, name, errs), &se) {
		st = se.ErrStatus
	}
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &st}}
}
