package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// Names of mesh-webhook's webhooks, in the MutatingWebhookConfiguration
// and ValidatingWebhookConfiguration of deploy/webhook.
const (
	WebhookServiceEntries      = "serviceentries.mesh.kubectl-mesh.io"
	WebhookDestinationRules    = "destinationrules.mesh.kubectl-mesh.io"
	WebhookServiceEntryDeletes = "serviceentry-deletes.mesh.kubectl-mesh.io"
)

// MatchConditionName names the one match condition of each webhook.
const MatchConditionName = "suffix-host"

// MatchConditions returns the matchConditions of each of mesh-webhook's
// webhooks, by webhook name: the API server sends a request only when the
// object has a host under suffix (any case, with or without a trailing
// dot), so a webhook outage cannot touch other ServiceEntries or
// DestinationRules. ServiceEntries are judged by spec.hosts,
// DestinationRules by spec.host, deletes by the old object's spec.hosts.
// The suffix is lower-cased; SyncConfigurations validates it.
func MatchConditions(suffix string) map[string][]admissionregistrationv1.MatchCondition {
	s := strings.ToLower(suffix)
	under := func(v string) string {
		return v + ".lowerAscii() == " + celString(s) +
			" || " + v + ".lowerAscii().endsWith(" + celString("."+s) + ")" +
			" || " + v + ".lowerAscii().endsWith(" + celString("."+s+".") + ")"
	}
	hosts := func(obj string) string {
		return "has(" + obj + ".spec) && has(" + obj + ".spec.hosts) && " + obj + ".spec.hosts.exists(h, " + under("h") + ")"
	}
	one := func(expr string) []admissionregistrationv1.MatchCondition {
		return []admissionregistrationv1.MatchCondition{{Name: MatchConditionName, Expression: expr}}
	}
	return map[string][]admissionregistrationv1.MatchCondition{
		WebhookServiceEntries:      one(hosts("object")),
		WebhookDestinationRules:    one("has(object.spec) && has(object.spec.host) && (" + under("object.spec.host") + ")"),
		WebhookServiceEntryDeletes: one(hosts("oldObject")),
	}
}

// celString quotes s as a CEL string literal.
func celString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// SyncConfigurations makes the matchConditions of mesh-webhook's webhooks in
// the MutatingWebhookConfiguration and the ValidatingWebhookConfiguration
// named name those of MatchConditions(suffix). It patches only webhooks
// whose conditions differ (a JSON patch that first tests the webhook's
// name at its index, so a concurrent reordering fails instead of patching
// the wrong webhook), leaves other webhooks and fields (caBundle) alone,
// and skips a configuration that does not exist yet.
func SyncConfigurations(ctx context.Context, kube kubernetes.Interface, name, suffix string) error {
	if err := rules.ValidateSuffix(suffix); err != nil {
		return fmt.Errorf("webhook configurations %s: %w", name, err)
	}
	want := MatchConditions(suffix)
	adm := kube.AdmissionregistrationV1()
	var errs []error

	mwc, err := adm.MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		errs = append(errs, fmt.Errorf("MutatingWebhookConfiguration %s: %w", name, err))
	default:
		current := make([]namedConditions, len(mwc.Webhooks))
		for i, w := range mwc.Webhooks {
			current[i] = namedConditions{w.Name, w.MatchConditions}
		}
		if patch, err := matchConditionsPatch(current, want); err != nil {
			errs = append(errs, err)
		} else if patch != nil {
			if _, err := adm.MutatingWebhookConfigurations().Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: Name}); err != nil {
				errs = append(errs, fmt.Errorf("MutatingWebhookConfiguration %s: patch matchConditions: %w", name, err))
			}
		}
	}

	vwc, err := adm.ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		errs = append(errs, fmt.Errorf("ValidatingWebhookConfiguration %s: %w", name, err))
	default:
		current := make([]namedConditions, len(vwc.Webhooks))
		for i, w := range vwc.Webhooks {
			current[i] = namedConditions{w.Name, w.MatchConditions}
		}
		if patch, err := matchConditionsPatch(current, want); err != nil {
			errs = append(errs, err)
		} else if patch != nil {
			if _, err := adm.ValidatingWebhookConfigurations().Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: Name}); err != nil {
				errs = append(errs, fmt.Errorf("ValidatingWebhookConfiguration %s: patch matchConditions: %w", name, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sync matchConditions of the webhook configurations (suffix %q): %w", suffix, err)
	}
	return nil
}

type namedConditions struct {
	name       string
	conditions []admissionregistrationv1.MatchCondition
}

// matchConditionsPatch is the JSON patch that gives each webhook named in
// want its conditions, or nil when none differs.
func matchConditionsPatch(current []namedConditions, want map[string][]admissionregistrationv1.MatchCondition) ([]byte, error) {
	type op struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}
	var ops []op
	for i, w := range current {
		conds, ours := want[w.name]
		if !ours || slices.Equal(w.conditions, conds) {
			continue
		}
		at := fmt.Sprintf("/webhooks/%d", i)
		// add replaces an existing member and creates a missing one.
		ops = append(ops, op{Op: "test", Path: at + "/name", Value: w.name}, op{Op: "add", Path: at + "/matchConditions", Value: conds})
	}
	if len(ops) == 0 {
		return nil, nil
	}
	return json.Marshal(ops)
}
