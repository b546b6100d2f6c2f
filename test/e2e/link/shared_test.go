package link

import (
	"context"
	"maps"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Two links of one cluster share its global DNS forwarding: unlinking the
// first keeps it, unlinking the last restores the original Corefile.
func TestUnlinkKeepsDNSForOtherLinks(t *testing.T) {
	trust(t, "cluster1", "cluster2", "cluster3")
	before := configMap(t, "cluster1", "kube-system", "coredns")
	kubectlMesh(t, "link", "--from", "cluster1", "--to", "cluster2")
	kubectlMesh(t, "link", "--from", "cluster1", "--to", "cluster3")
	linked := configMap(t, "cluster1", "kube-system", "coredns")

	out := kubectlMesh(t, "unlink", "--from", "cluster1", "--to", "cluster2")
	if !strings.Contains(out, "still needs it") {
		t.Errorf("unlink does not say the forwarding is kept:\n%s", out)
	}
	if got := configMap(t, "cluster1", "kube-system", "coredns"); got.Data["Corefile"] != linked.Data["Corefile"] {
		t.Fatalf("first unlink removed DNS another link needs:\n%s", got.Data["Corefile"])
	}
	kubectlMesh(t, "unlink", "--from", "cluster1", "--to", "cluster3")
	if got := configMap(t, "cluster1", "kube-system", "coredns"); !maps.Equal(got.Data, before.Data) {
		t.Fatalf("last unlink did not restore the Corefile:\n%q", got.Data["Corefile"])
	}
}

// Istio 1.8+ has no istiocoredns: link refuses the .global model there,
// explaining why, and --multi-primary skips the DNS step.
func TestLinkWithoutIstioCoreDNS(t *testing.T) {
	trust(t, "cluster3", "cluster1")
	ctx := t.Context()
	svcs := theLab.Cluster("cluster3").Kube.CoreV1().Services("istio-system")
	svc, err := svcs.Get(ctx, "istiocoredns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svcs.Delete(ctx, "istiocoredns", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		restored := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace, Labels: svc.Labels}, Spec: svc.Spec}
		restored.Spec.ClusterIP, restored.Spec.ClusterIPs = "", nil
		if _, err := svcs.Create(context.Background(), restored, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Error(err)
		}
	})
	before := configMap(t, "cluster3", "kube-system", "coredns")
	_, stderr := meshFails(t, "link", "--from", "cluster3", "--to", "cluster1")
	if !strings.Contains(stderr, "istiocoredns not found") || !strings.Contains(stderr, "--multi-primary") {
		t.Fatalf("refusal does not explain the missing istiocoredns:\n%s", stderr)
	}
	out := kubectlMesh(t, "link", "--from", "cluster3", "--to", "cluster1", "--multi-primary")
	if !strings.Contains(out, "no istiocoredns") {
		t.Errorf("multi-primary link does not say why DNS is skipped:\n%s", out)
	}
	if got := configMap(t, "cluster3", "kube-system", "coredns"); got.ResourceVersion != before.ResourceVersion {
		t.Fatal("multi-primary link without istiocoredns edited the Corefile")
	}
	kubectlMesh(t, "unlink", "--from", "cluster3", "--to", "cluster1")
}
