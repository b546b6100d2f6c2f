package webhook

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s (last error: %v)", what, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func fastClient(t *testing.T, c *lab.Cluster) dynamic.Interface {
	t.Helper()
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = 2000, 2000
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConcurrentCreatesKeepVIPsUnique(t *testing.T) {
	ctx := t.Context()
	c := theLab.Cluster("cluster1")
	dyn := fastClient(t, c)
	const ns = "bar"
	const singles, pairs = 500, 50
	// All creates are started at once; at most inFlight reach the API
	// server together, so that a lab sharing two cores stays within the
	// webhook timeout while the three replicas still race on every claim.
	const inFlight = 48
	sem := make(chan struct{}, inFlight)
	type result struct {
		name string
		err  error
	}
	results := make(chan result, singles+2*pairs)
	var wg sync.WaitGroup
	for i := range singles {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			name := fmt.Sprintf("svc%d", i)
			_, err := dyn.Resource(rules.ServiceEntryGVR).Namespace(ns).Create(ctx, entry(ns, name, name+".remote.global", ""), metav1.CreateOptions{})
			results <- result{name, err}
		})
	}
	for i := range pairs {
		addr := fmt.Sprintf("240.1.0.%d", i+1)
		// Both sides of a pair go out together, so they race for the claim.
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var pair sync.WaitGroup
			for _, side := range []string{"a", "b"} {
				pair.Go(func() {
					name := fmt.Sprintf("pair%d-%s", i, side)
					_, err := dyn.Resource(rules.ServiceEntryGVR).Namespace(ns).Create(ctx, entry(ns, name, name+".remote.global", addr), metav1.CreateOptions{})
					results <- result{name, err}
				})
			}
			pair.Wait()
		})
	}
	wg.Wait()
	close(results)
	errs := map[string]error{}
	for r := range results {
		errs[r.name] = r.err
	}
	failed := 0
	for i := range singles {
		if err := errs[fmt.Sprintf("svc%d", i)]; err != nil {
			if failed++; failed <= 5 {
				t.Errorf("create svc%d without addresses: %v", i, err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d creates without addresses failed", failed, singles)
	}
	for i := range pairs {
		a, b := errs[fmt.Sprintf("pair%d-a", i)], errs[fmt.Sprintf("pair%d-b", i)]
		if (a == nil) == (b == nil) {
			t.Errorf("pair %d naming 240.1.0.%d: errors %v and %v; want exactly one admitted", i, i+1, a, b)
			continue
		}
		denied, winner := a, fmt.Sprintf("pair%d-b", i)
		if a == nil {
			denied, winner = b, fmt.Sprintf("pair%d-a", i)
		}
		if !apierrors.IsInvalid(denied) || !strings.Contains(denied.Error(), ns+"/"+winner) || !strings.Contains(denied.Error(), "spec.addresses[0]") {
			t.Errorf("pair %d: denial %v does not name the holder %s/%s on spec.addresses[0]", i, denied, ns, winner)
		}
	}
	// No VIP is listed twice among admitted entries, and each is claimed by
	// its entry.
	list, err := dyn.Resource(rules.ServiceEntryGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, se := range list.Items {
		addrs, _, _ := unstructured.NestedStringSlice(se.Object, "spec", "addresses")
		if len(addrs) != 1 {
			t.Errorf("%s has addresses %v", se.GetName(), addrs)
			continue
		}
		if other, dup := seen[addrs[0]]; dup {
			t.Errorf("VIP %s on both %s and %s", addrs[0], other, se.GetName())
		}
		seen[addrs[0]] = se.GetName()
	}
	if len(list.Items) != singles+pairs {
		t.Errorf("%d entries admitted, want %d", len(list.Items), singles+pairs)
	}
	claims, err := dyn.Resource(vip.GVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	holders := map[string]string{}
	for _, cl := range claims.Items {
		n, _, _ := unstructured.NestedString(cl.Object, "spec", "serviceEntry", "name")
		holders[cl.GetName()] = n
	}
	for addr, name := range seen {
		if holders[addr] != name {
			t.Errorf("VIP %s of %s is claimed by %q", addr, name, holders[addr])
		}
	}
	t.Logf("%d entries, %d distinct VIPs, %d claims in the cluster", len(list.Items), len(seen), len(claims.Items))
	// Leave the namespace clean for other tests; the repair loop frees the
	// claims.
	if err := dyn.Resource(rules.ServiceEntryGVR).Namespace(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
}

func claimHolder(ctx context.Context, c *lab.Cluster, addr string) (string, error) {
	cl, err := c.Dynamic.Resource(vip.GVR).Get(ctx, addr, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	ns, _, _ := unstructured.NestedString(cl.Object, "spec", "serviceEntry", "namespace")
	n, _, _ := unstructured.NestedString(cl.Object, "spec", "serviceEntry", "name")
	return ns + "/" + n, nil
}

func TestDeleteFreesVIP(t *testing.T) {
	ctx := t.Context()
	c := theLab.Cluster("cluster1")
	const addr = "240.2.0.1"
	ses := c.Dynamic.Resource(rules.ServiceEntryGVR).Namespace("foo")
	if _, err := ses.Create(ctx, entry("foo", "first", "first.bar.global", addr), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if h, err := claimHolder(ctx, c, addr); err != nil || h != "foo/first" {
		t.Fatalf("claim %s held by %q (%v), want foo/first", addr, h, err)
	}
	if _, err := ses.Create(ctx, entry("foo", "second", "second.bar.global", addr), metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "foo/first") {
		t.Fatalf("second entry on a held VIP: %v; want a denial naming foo/first", err)
	}
	if err := ses.Delete(ctx, "first", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The DELETE admission released the claim: no wait for the repair loop.
	if _, err := ses.Create(ctx, entry("foo", "second", "second.bar.global", addr), metav1.CreateOptions{}); err != nil {
		t.Fatalf("re-create on %s right after the delete: %v", addr, err)
	}
	if h, err := claimHolder(ctx, c, addr); err != nil || h != "foo/second" {
		t.Fatalf("claim %s held by %q (%v), want foo/second", addr, h, err)
	}
}

func TestOrphanClaimRepaired(t *testing.T) {
	ctx := t.Context()
	c := theLab.Cluster("cluster1")
	orphan := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "mesh.kubectl-mesh.io/v1alpha1",
		"kind":       "VIPClaim",
		"metadata":   map[string]any{"name": "240.2.0.9"},
		"spec": map[string]any{
			"address": "240.2.0.9", "host": "gone.bar.global",
			"serviceEntry": map[string]any{"namespace": "foo", "name": "gone"},
		},
	}}
	if _, err := c.Dynamic.Resource(vip.GVR).Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the orphan claim is deleted by the repair loop", func() (bool, error) {
		_, err := c.Dynamic.Resource(vip.GVR).Get(ctx, "240.2.0.9", metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
	if n, err := deny.Metric(ctx, "mesh_webhook_vip_repairs_total", map[string]string{"action": "orphan-deleted"}); err != nil || n < 1 {
		t.Errorf("repairs{action=orphan-deleted} = %v (%v), want at least 1", n, err)
	}
}

func TestBrownfieldAdoptedAndDuplicatesReported(t *testing.T) {
	ctx := t.Context()
	c := theLab.Cluster("cluster2")
	eventually(t, 30*time.Second, "brown-a's VIP is adopted", func() (bool, error) {
		h, err := claimHolder(ctx, c, brownfield["brown-a"])
		return h == "foo/brown-a", err
	})
	eventually(t, 30*time.Second, "the shared VIP is reported in the duplicates metric", func() (bool, error) {
		n, err := warn.Metric(ctx, "mesh_webhook_vip_duplicates", nil)
		return n >= 1, err
	})
	eventually(t, 30*time.Second, "a DuplicateVIP event names the entries", func() (bool, error) {
		out, _, err := theLab.Kubectl(ctx, nil, "--context", "cluster2", "get", "events", "-n", "foo", "--field-selector", "reason=DuplicateVIP", "-o", "name")
		return strings.Count(out, "\n") >= 1, err
	})
}

func TestServingCertReplacedWithoutRestart(t *testing.T) {
	ctx := t.Context()
	pids := make([]int, len(deny.Replicas))
	for i, p := range deny.Replicas {
		pids[i] = p.PID
	}
	before, err := deny.ServedCert(0)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := deny.IssueServingCert()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Fatal("the new certificate has the old serial")
	}
	for i := range deny.Replicas {
		eventually(t, 30*time.Second, fmt.Sprintf("replica %d serves the new certificate", i), func() (bool, error) {
			got, err := deny.ServedCert(i)
			return err == nil && got.SerialNumber.Cmp(fresh.SerialNumber) == 0, err
		})
		if deny.Replicas[i].PID != pids[i] || deny.Replicas[i].Cmd.ProcessState != nil {
			t.Errorf("replica %d restarted", i)
		}
	}
	// The API server still reaches the webhook.
	if _, _, err := kubectl(t, ctx, "cluster1", minimal("after-rotation", "rotated.foo.global"), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
}
