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
	err := patchWebhooks(ctx, kube, name, func(w webhookView) (string, any, bool) {
		conds, ours := want[w.name]
		return "matchConditions", conds, ours && !slices.Equal(w.conditions, conds)
	}, nil)
	if err != nil {
		return fmt.Errorf("sync matchConditions of the webhook configurations (suffix %q): %w", suffix, err)
	}
	return nil
}

// webhookView is what an edit of one webhook of a configuration reads.
type webhookView struct {
	name       string
	caBundle   []byte
	conditions []admissionregistrationv1.MatchCondition
}

// patchWebhooks edits the webhooks of the MutatingWebhookConfiguration and
// the ValidatingWebhookConfiguration named name: edit returns the member to
// set (a path below the webhook), its value, and whether it changes. Each
// edit is guarded by a test of the webhook's name, so that a concurrent
// change of the list never lands on another webhook; nothing is written
// when nothing changes. A configuration that does not exist is skipped,
// and told to notFound (when not nil).
func patchWebhooks(ctx context.Context, kube kubernetes.Interface, name string, edit func(webhookView) (member string, value any, change bool), notFound func(kind string)) error {
	adm := kube.AdmissionregistrationV1()
	configs := []webhookConfig{
		configOf(ctx, name, "MutatingWebhookConfiguration", adm.MutatingWebhookConfigurations(),
			func(c *admissionregistrationv1.MutatingWebhookConfiguration) []webhookView {
				return viewsOf(c.Webhooks, func(w admissionregistrationv1.MutatingWebhook) webhookView {
					return webhookView{w.Name, w.ClientConfig.CABundle, w.MatchConditions}
				})
			}),
		configOf(ctx, name, "ValidatingWebhookConfiguration", adm.ValidatingWebhookConfigurations(),
			func(c *admissionregistrationv1.ValidatingWebhookConfiguration) []webhookView {
				return viewsOf(c.Webhooks, func(w admissionregistrationv1.ValidatingWebhook) webhookView {
					return webhookView{w.Name, w.ClientConfig.CABundle, w.MatchConditions}
				})
			}),
	}
	var errs []error
	for _, c := range configs {
		current, err := c.get()
		switch {
		case apierrors.IsNotFound(err):
			if notFound != nil {
				notFound(c.kind)
			}
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("%s %s: %w", c.kind, name, err))
			continue
		}
		if patch := webhooksPatch(current, edit); patch != nil {
			if err := c.patch(patch); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: patch: %w", c.kind, name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// webhookConfig reads the webhooks of one configuration and patches it.
type webhookConfig struct {
	kind  string
	get   func() ([]webhookView, error)
	patch func([]byte) error
}

// configClient is the typed client of one kind of webhook configuration.
type configClient[C any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (C, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (C, error)
}

// configOf reads and patches the configuration name of one kind: the two
// admission kinds differ only in their Go types.
func configOf[C any](ctx context.Context, name, kind string, client configClient[C], views func(C) []webhookView) webhookConfig {
	return webhookConfig{
		kind: kind,
		get: func() ([]webhookView, error) {
			c, err := client.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			return views(c), nil
		},
		patch: func(p []byte) error {
			_, err := client.Patch(ctx, name, types.JSONPatchType, p, metav1.PatchOptions{FieldManager: Name})
			return err
		},
	}
}

// viewsOf is what an edit reads of each webhook.
func viewsOf[W any](webhooks []W, view func(W) webhookView) []webhookView {
	out := make([]webhookView, len(webhooks))
	for i, w := range webhooks {
		out[i] = view(w)
	}
	return out
}

// webhooksPatch is the JSON patch of edit over current, or nil when
// nothing changes.
func webhooksPatch(current []webhookView, edit func(webhookView) (string, any, bool)) []byte {
	type op struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}
	var ops []op
	for i, w := range current {
		member, value, change := edit(w)
		if !change {
			continue
		}
		at := fmt.Sprintf("/webhooks/%d", i)
		// add replaces an existing member and creates a missing one.
		ops = append(ops, op{Op: "test", Path: at + "/name", Value: w.name}, op{Op: "add", Path: at + "/" + member, Value: value})
	}
	if len(ops) == 0 {
		return nil
	}
	b, _ := json.Marshal(ops) // names, conditions and bytes: cannot fail
	return b
}
