package webhook

import (
	"net"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

// TestSyncConfigurationsMovesTheWebhooks registers the webhook
// configurations of deploy/webhook on a cluster of its own, pointing at an
// address where nothing listens (a webhook that is down), and moves them to
// another suffix with SyncConfigurations: the API server must accept the
// generated conditions and send exactly the objects under the new suffix;
// deletes pass although the webhook is down.
func TestSyncConfigurationsMovesTheWebhooks(t *testing.T) {
	ctx := t.Context()
	c := soloCluster(t, "configurations")
	// Before the webhooks exist: an entry under the future suffix, to
	// delete while the webhook is down.
	doomed := complete("doomed", "doomed.bar.mesh", "240.0.0.20", 15443)
	if _, err := c.Dynamic.Resource(rules.ServiceEntryGVR).Namespace("foo").Create(ctx, doomed, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "https://" + l.Addr().String()
	_ = l.Close()
	cfgs, err := lab.WebhookConfigurations(dead, []byte("not a CA"), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range cfgs {
		gvr := schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: strings.ToLower(o.GetKind()) + "s"}
		if _, err := c.Dynamic.Resource(gvr).Create(ctx, o, metav1.CreateOptions{}); err != nil {
			t.Fatalf("register %s: %v", o.GetKind(), err)
		}
	}
	// As shipped: .global entries go to the (dead) webhook, others do not.
	if err := verdict(ctx, c, complete("g", "g.bar.global", "240.0.0.21", 15443)); err == nil || !strings.Contains(err.Error(), webhook.WebhookServiceEntries) {
		t.Fatalf(".global entry with the webhook down: %v; want the failing call to %s", err, webhook.WebhookServiceEntries)
	}
	if err := verdict(ctx, c, complete("m", "m.bar.mesh", "240.0.0.22", 15443)); err != nil {
		t.Fatalf(".mesh entry, suffix global: %v; want it never sent", err)
	}

	if err := webhook.SyncConfigurations(ctx, c.Kube, webhook.Name, "mesh"); err != nil {
		t.Fatalf("the API server refused the generated matchConditions: %v", err)
	}
	// The API server's view of the configurations follows a watch: give
	// it a moment.
	eventually(t, 10*time.Second, ".global entries no longer sent under suffix mesh", func() (bool, error) {
		err := verdict(ctx, c, complete("g", "g.bar.global", "240.0.0.21", 15443))
		return err == nil, err
	})
	if err := verdict(ctx, c, complete("m", "m.bar.mesh", "240.0.0.22", 15443)); err == nil || !strings.Contains(err.Error(), webhook.WebhookServiceEntries) {
		t.Errorf(".mesh entry, suffix mesh: %v; want the failing call to %s", err, webhook.WebhookServiceEntries)
	}
	// The delete webhook matches the old object, and fails open.
	if err := c.Dynamic.Resource(rules.ServiceEntryGVR).Namespace("foo").Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Errorf("delete of a .mesh entry with its webhook down: %v; a webhook outage must never block deletes", err)
	}
	if _, err := c.Dynamic.Resource(rules.ServiceEntryGVR).Namespace("foo").Get(ctx, "doomed", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("doomed entry still there: %v", err)
	}
	// In sync: a second call writes nothing (the resourceVersion stays).
	m, err := c.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhook.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := webhook.SyncConfigurations(ctx, c.Kube, webhook.Name, "mesh"); err != nil {
		t.Fatal(err)
	}
	again, err := c.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhook.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.ResourceVersion != m.ResourceVersion {
		t.Errorf("SyncConfigurations rewrote configurations already in sync (resourceVersion %s → %s)", m.ResourceVersion, again.ResourceVersion)
	}
}
