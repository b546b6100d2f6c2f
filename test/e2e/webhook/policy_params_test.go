package webhook

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

const policyName = "mesh-global-serviceentries"

// complete is a .global ServiceEntry the webhook would leave unchanged
// (nothing for a mutating webhook to fill), with its endpoint port mapped
// to gatewayPort.
func complete(name, host, addr string, gatewayPort int64) *unstructured.Unstructured {
	o := entry("foo", name, host, addr)
	o.Object["spec"].(map[string]any)["endpoints"].([]any)[0].(map[string]any)["ports"] = map[string]any{"http": gatewayPort}
	return o
}

// verdict dry-runs the creation of o and returns the API server's error
// (nil: admitted).
func verdict(ctx context.Context, c *lab.Cluster, o *unstructured.Unstructured) error {
	_, err := c.Dynamic.Resource(rules.ServiceEntryGVR).Namespace(o.GetNamespace()).Create(ctx, o.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	return err
}

// awaitVerdict waits until the policy answers o as wanted: admitted (want
// "") or denied with a message holding every string of want. The policy
// reads its ConfigMap through the API server's informer, so a change shows
// after a moment; the wait has no bearing on the result, it only bounds a
// test whose policy never changes its answer.
func awaitVerdict(t *testing.T, c *lab.Cluster, o *unstructured.Unstructured, want ...string) {
	t.Helper()
	ctx := t.Context()
	matches := func(err error) bool {
		if len(want) == 0 {
			return err == nil
		}
		if err == nil || !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err) {
			return false
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				return false
			}
		}
		return true
	}
	var err error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		if err = verdict(ctx, c, o); matches(err) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	spec, _, _ := unstructured.NestedMap(o.Object, "spec")
	if len(want) == 0 {
		t.Fatalf("%s (spec %v): want admitted, got %v", o.GetName(), spec, err)
	}
	t.Fatalf("%s (spec %v): want denied naming %q, got %v", o.GetName(), spec, want, err)
}

// soloCluster starts a bare lab cluster of its own for one test, with
// namespace foo, and stops it when the test ends.
func soloCluster(t *testing.T, name string) *lab.Cluster {
	t.Helper()
	ctx := t.Context()
	l, err := lab.Start(ctx, lab.Options{Clusters: []string{name}, NoFurniture: true, Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Stop(); err != nil {
			t.Error(err)
		}
	})
	c := l.Cluster(name)
	if _, err := c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "foo"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPolicyFollowsConfigMap runs the ValidatingAdmissionPolicy alone (no
// webhook registered) on a cluster of its own, and moves it with the
// ConfigMap the webhook reads.
func TestPolicyFollowsConfigMap(t *testing.T) {
	ctx := t.Context()
	c := soloCluster(t, "policy")
	if err := c.InstallPolicy(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// No controller-manager runs in the lab, so the policy's type-check
	// status is never written: a broken expression shows as a failure of
	// every request instead, which the admitted entries below catch and the
	// denials (each naming its field) cannot be confused with.
	nodePort := complete("np", "np.bar.global", "240.0.0.9", 31443)
	// The defaults of the shipped ConfigMap.
	awaitVerdict(t, c, nodePort, policyName, "spec.endpoints[].ports", "15443")
	awaitVerdict(t, c, complete("valid", "valid.bar.global", "240.0.0.10", 15443))
	for name, tc := range map[string]struct {
		spec map[string]any
		want []string
	}{
		"two hosts":      {map[string]any{"hosts": []any{"a.bar.global", "b.bar.global"}}, []string{"spec.hosts", "<service>.<namespace>.global"}},
		"bad host form":  {map[string]any{"hosts": []any{"v1.a.bar.global"}}, []string{"spec.hosts"}},
		"mesh external":  {map[string]any{"location": "MESH_EXTERNAL"}, []string{"spec.location", "MESH_INTERNAL"}},
		"not class E":    {map[string]any{"addresses": []any{"10.0.0.5"}}, []string{"spec.addresses", "240.0.0.0/4"}},
		"istio range":    {map[string]any{"addresses": []any{"240.240.0.5"}}, []string{"spec.addresses", "240.240.0.0/16"}},
		"broadcast":      {map[string]any{"addresses": []any{"255.255.255.255"}}, []string{"spec.addresses", "255.255.255.255/32"}},
		"cidr address":   {map[string]any{"addresses": []any{"240.0.9.0/24"}, "resolution": "STATIC"}, []string{"spec.addresses"}},
		"ipv6 address":   {map[string]any{"addresses": []any{"2001:db8::1"}}, []string{"spec.addresses"}},
		"wrong gw port":  {map[string]any{"endpoints": []any{map[string]any{"address": "203.0.113.7", "ports": map[string]any{"http": int64(8000)}}}}, []string{"spec.endpoints[].ports"}},
		"upper-case svc": {map[string]any{"hosts": []any{"A.bar.global"}}, []string{"spec.hosts"}},
	} {
		t.Run("default/"+name, func(t *testing.T) {
			o := complete("bad", "bad.bar.global", "240.0.0.11", 15443)
			for k, v := range tc.spec {
				o.Object["spec"].(map[string]any)[k] = v
			}
			awaitVerdict(t, c, o, append([]string{policyName}, tc.want...)...)
		})
	}

	// A NodePort gateway port allowed in the ConfigMap is allowed by the
	// policy; other ports stay refused, naming the configured set.
	if err := c.ApplyWebhookConfig(ctx, map[string]string{"allowedGatewayPorts": "15443,31443"}); err != nil {
		t.Fatal(err)
	}
	awaitVerdict(t, c, nodePort)
	awaitVerdict(t, c, complete("other-port", "other.bar.global", "240.0.0.12", 8000), "spec.endpoints[].ports", "15443, 31443")

	// A suffix change moves the policy: .global hosts are no longer its
	// business, .mesh ones are, with the ranges and ports of the ConfigMap.
	if err := c.ApplyWebhookConfig(ctx, map[string]string{"hostSuffix": "mesh", "vipRange": "241.0.0.0/8", "excludedRanges": "241.1.0.0/16", "allowedGatewayPorts": "15443,31443"}); err != nil {
		t.Fatal(err)
	}
	awaitVerdict(t, c, complete("old-suffix", "old.bar.global", "10.0.0.5", 8000))
	awaitVerdict(t, c, complete("new-suffix-port", "new.bar.mesh", "241.0.0.5", 8000), "spec.endpoints[].ports", ".mesh")
	awaitVerdict(t, c, complete("new-suffix-range", "new.bar.mesh", "240.0.0.5", 15443), "spec.addresses", "241.0.0.0/8")
	awaitVerdict(t, c, complete("new-suffix-excluded", "new.bar.mesh", "241.1.0.5", 15443), "spec.addresses", "241.1.0.0/16")
	awaitVerdict(t, c, complete("new-suffix-host", "v1.new.bar.mesh", "241.0.0.5", 15443), "spec.hosts", "<service>.<namespace>.mesh")
	awaitVerdict(t, c, complete("new-suffix-ok", "new.bar.mesh", "241.0.0.5", 31443))

	// An absent key means the default: without hostSuffix, .global again.
	if err := c.ApplyWebhookConfig(ctx, map[string]string{"hostSuffix": "", "vipRange": "", "excludedRanges": ""}); err != nil {
		t.Fatal(err)
	}
	awaitVerdict(t, c, complete("default-suffix", "def.bar.global", "240.240.0.5", 15443), "spec.addresses", "240.240.0.0/16")

	// A broken ConfigMap is named with its fix, not silently ignored.
	if err := c.ApplyWebhookConfig(ctx, map[string]string{"allowedGatewayPorts": "15443,https"}); err != nil {
		t.Fatal(err)
	}
	awaitVerdict(t, c, complete("broken-config", "broken.bar.global", "240.0.0.13", 15443), "mesh-webhook-config", "allowedGatewayPorts")

	// Without the ConfigMap the binding fails closed (parameterNotFoundAction
	// Deny) rather than switching the rules off; it comes back with it.
	if err := c.Kube.CoreV1().ConfigMaps(lab.WebhookNamespace).Delete(ctx, "mesh-webhook-config", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	awaitVerdict(t, c, complete("no-config", "noconfig.bar.global", "240.0.0.14", 15443), policyName)
	if err := c.ApplyWebhookConfig(ctx, nil); err != nil {
		t.Fatal(err)
	}
	awaitVerdict(t, c, complete("config-back", "back.bar.global", "240.0.0.14", 15443))
}
