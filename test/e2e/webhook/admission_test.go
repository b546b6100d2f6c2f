package webhook

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

// peakRSS is the highest resident set size of a mesh-webhook process so far
// (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// bigEntry is a `.global` entry of ports × endpoints without endpoint ports.
func bigEntry(ports, endpoints int) string {
	var b strings.Builder
	b.WriteString(`{"apiVersion":"networking.istio.io/v1","kind":"ServiceEntry","metadata":{"name":"big","namespace":"foo"},"spec":{"hosts":["big.bar.global"],"ports":[`)
	for i := range ports {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"p%d","number":%d,"protocol":"TCP"}`, i, 1000+i)
	}
	b.WriteString(`],"endpoints":[`)
	for i := range endpoints {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"address":"10.%d.%d.1"}`, i>>8, i&255)
	}
	b.WriteString(`]}}`)
	return b.String()
}

// TestOversizedEntryDeniedWithinLimits: the 1,000 × 1,000 dry run that used
// to take 13 s and 291 MiB is denied naming the fields and their limits,
// and no replica's peak RSS reaches the Deployment's 256 MiB limit. (How
// fast: hack/bench-webhook -oversized prints it.)
func TestOversizedEntryDeniedWithinLimits(t *testing.T) {
	ctx := t.Context()
	_, stderr, err := kubectl(t, ctx, "cluster1", bigEntry(1000, 1000), "create", "--dry-run=server", "-f", "-")
	if err == nil {
		t.Fatal("the oversized entry was admitted")
	}
	for _, want := range []string{"spec.ports: Too many: 1000: must have at most 128 items", "spec.endpoints: Too many: 1000: must have at most 256 items"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q lacks %q", stderr, want)
		}
	}
	for _, r := range deny.Replicas {
		if rss := peakRSS(t, r.PID); rss >= 256<<20 {
			t.Errorf("replica %d peaked at %d MiB, above the Deployment's 256 MiB limit", r.PID, rss>>20)
		}
	}
}

const seedMistake = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: %s, namespace: foo}
spec:
  host: %s
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
  subsets:
  - name: v2
    labels: {version: v2}
`

func TestDestinationRuleSeedMistake(t *testing.T) {
	ctx := t.Context()
	ses := theLab.Cluster("cluster1").Dynamic.Resource(rules.ServiceEntryGVR).Namespace("foo")
	if _, err := ses.Create(ctx, entry("foo", "ruled", "ruled.bar.global", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ses.Delete(context.Background(), "ruled", metav1.DeleteOptions{}) })
	rule := fmt.Sprintf(seedMistake, "ruled-global", "ruled.bar.global")
	eventually(t, 10*time.Second, "the seed rule is denied on its subset labels", func() (bool, error) {
		_, stderr, err := kubectl(t, ctx, "cluster1", rule, "apply", "-f", "-")
		if err == nil {
			_, _, _ = kubectl(t, ctx, "cluster1", "", "delete", "destinationrule", "-n", "foo", "ruled-global")
			return false, fmt.Errorf("admitted")
		}
		if !strings.Contains(stderr, "spec.subsets[0].labels") || !strings.Contains(stderr, "cluster: cluster2") {
			return false, fmt.Errorf("stderr %q", stderr)
		}
		return true, nil
	})
	// Warn mode (cluster2) admits it with the same message as a warning.
	wses := theLab.Cluster("cluster2").Dynamic.Resource(rules.ServiceEntryGVR).Namespace("foo")
	if _, err := wses.Create(ctx, entry("foo", "ruled", "ruled.bar.global", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wses.Delete(context.Background(), "ruled", metav1.DeleteOptions{}) })
	eventually(t, 10*time.Second, "warn mode admits the seed rule with a warning", func() (bool, error) {
		_, stderr, err := kubectl(t, ctx, "cluster2", rule, "apply", "-f", "-")
		if err != nil {
			return false, err
		}
		_, _, _ = kubectl(t, ctx, "cluster2", "", "delete", "destinationrule", "-n", "foo", "ruled-global")
		if !strings.Contains(stderr, "Warning:") || !strings.Contains(stderr, "spec.subsets[0].labels") {
			return false, fmt.Errorf("no warning in %q", stderr)
		}
		return true, nil
	})
}

func TestBareDestinationRuleGetsSNIs(t *testing.T) {
	ctx := t.Context()
	c := theLab.Cluster("cluster1")
	ses := c.Dynamic.Resource(rules.ServiceEntryGVR).Namespace("foo")
	if _, err := ses.Create(ctx, entry("foo", "bare", "bare.bar.global", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ses.Delete(context.Background(), "bare", metav1.DeleteOptions{}) })
	rules := c.Dynamic.Resource(rules.DestinationRuleGVR).Namespace("foo")
	bare := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
		"metadata": map[string]any{"name": "bare-global", "namespace": "foo"},
		"spec": map[string]any{"host": "bare.bar.global", "subsets": []any{
			map[string]any{"name": "v2", "labels": map[string]any{"cluster": "cluster2"}},
		}},
	}}
	var got *unstructured.Unstructured
	// The index learns of the entry from its watch: a moment after the
	// entry's create.
	eventually(t, 10*time.Second, "the bare rule gets its SNIs", func() (bool, error) {
		var err error
		got, err = rules.Create(ctx, bare, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return false, err
		}
		pls, _, _ := unstructured.NestedSlice(got.Object, "spec", "trafficPolicy", "portLevelSettings")
		return len(pls) == 1, nil
	})
	pls, _, _ := unstructured.NestedSlice(got.Object, "spec", "trafficPolicy", "portLevelSettings")
	if sni, _, _ := unstructured.NestedString(pls[0].(map[string]any), "tls", "sni"); sni != "outbound_.8000_._.bare.bar.svc.cluster.local" {
		t.Errorf("rule SNI %q", sni)
	}
	subsets, _, _ := unstructured.NestedSlice(got.Object, "spec", "subsets")
	spls, _, _ := unstructured.NestedSlice(subsets[0].(map[string]any), "trafficPolicy", "portLevelSettings")
	if len(spls) != 1 {
		t.Fatalf("subset port-level settings %v", spls)
	}
	if sni, _, _ := unstructured.NestedString(spls[0].(map[string]any), "tls", "sni"); sni != "outbound_.8000_.v2_.bare.bar.svc.cluster.local" {
		t.Errorf("subset SNI %q", sni)
	}
	if mode, _, _ := unstructured.NestedString(got.Object, "spec", "trafficPolicy", "tls", "mode"); mode != "ISTIO_MUTUAL" {
		t.Errorf("tls.mode %q", mode)
	}
}

func TestDuplicateHostDenied(t *testing.T) {
	ctx := t.Context()
	ses := theLab.Cluster("cluster1").Dynamic.Resource(rules.ServiceEntryGVR).Namespace("foo")
	if _, err := ses.Create(ctx, entry("foo", "holder", "held.bar.global", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ses.Delete(context.Background(), "holder", metav1.DeleteOptions{}) })
	eventually(t, 10*time.Second, "a second entry for the host is denied naming the holder", func() (bool, error) {
		_, err := ses.Create(ctx, entry("foo", "second-holder", "held.bar.global", ""), metav1.CreateOptions{})
		if err == nil {
			_ = ses.Delete(ctx, "second-holder", metav1.DeleteOptions{})
			return false, fmt.Errorf("admitted")
		}
		return strings.Contains(err.Error(), "already held by ServiceEntry foo/holder"), err
	})
}

// TestConfigMapReloaded: a ConfigMap change reaches the running webhook
// and the ValidatingAdmissionPolicy without a restart; a bad one keeps the
// last good policy and says why in an Event.
func TestConfigMapReloaded(t *testing.T) {
	ctx := t.Context()
	c := theLab.Cluster("cluster1")
	cms := c.Kube.CoreV1().ConfigMaps(lab.WebhookNamespace)
	orig, err := cms.Get(ctx, "mesh-webhook-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pids := fmt.Sprint(deny.Replicas[0].PID)
	t.Cleanup(func() {
		cur, err := cms.Get(context.Background(), orig.Name, metav1.GetOptions{})
		if err == nil {
			cur.Data = orig.Data
			_, _ = cms.Update(context.Background(), cur, metav1.UpdateOptions{})
		}
	})
	set := func(k, v string) {
		t.Helper()
		cur, err := cms.Get(ctx, orig.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cur.Data == nil {
			cur.Data = map[string]string{}
		}
		cur.Data[k] = v
		if _, err := cms.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ses := c.Dynamic.Resource(rules.ServiceEntryGVR).Namespace("foo")
	np := entry("foo", "nodeport", "nodeport.bar.global", "")
	np.Object["spec"].(map[string]any)["endpoints"].([]any)[0].(map[string]any)["ports"] = map[string]any{"http": int64(31443)}
	if _, err := ses.Create(ctx, np, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err == nil {
		t.Fatal("gateway port 31443 admitted before it was allowed")
	}
	set("allowedGatewayPorts", "15443,31443")
	eventually(t, 20*time.Second, "gateway port 31443 is admitted once the ConfigMap allows it", func() (bool, error) {
		_, err := ses.Create(ctx, np, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err == nil, err
	})
	// A bad value is refused as a whole; the last good policy stays. (The
	// mode is the webhook's alone: the policy's binding does not read it.)
	set("mode", "sometimes")
	eventually(t, 20*time.Second, "an Event says why the ConfigMap was refused", func() (bool, error) {
		evs, err := c.Kube.EventsV1().Events(lab.WebhookNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Reason == "ConfigInvalid" && e.Type == corev1.EventTypeWarning && strings.Contains(e.Note, "sometimes") {
				return true, nil
			}
		}
		return false, nil
	})
	if _, err := ses.Create(ctx, np, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("after a bad ConfigMap the last good policy (31443 allowed) must stay: %v", err)
	}
	if now := fmt.Sprint(deny.Replicas[0].PID); now != pids {
		t.Errorf("the webhook restarted (pid %s → %s)", pids, now)
	}
}
