package link

import (
	"context"
	"maps"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/dns"
)

// AKS-style: the coredns ConfigMap is reconciled by the addon manager and
// user configuration goes to coredns-custom, whose *.server keys CoreDNS
// imports.
func TestLinkManagedCoreDNSCustom(t *testing.T) {
	trust(t, "cluster3", "cluster1")
	ctx := t.Context()
	cms := theLab.Cluster("cluster3").Kube.CoreV1().ConfigMaps("kube-system")
	custom := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns-custom", Namespace: "kube-system", Labels: map[string]string{"addonmanager.kubernetes.io/mode": "EnsureExists"}},
		Data:       map[string]string{"log.override": "log\n"},
	}
	if _, err := cms.Create(ctx, custom, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cms.Delete(context.Background(), "coredns-custom", metav1.DeleteOptions{}) })
	coredns, err := cms.Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	labels := coredns.Labels
	coredns.Labels = map[string]string{"addonmanager.kubernetes.io/mode": "Reconcile"}
	if coredns, err = cms.Update(ctx, coredns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if cm, err := cms.Get(ctx, "coredns", metav1.GetOptions{}); err == nil {
			cm.Labels = labels
			_, _ = cms.Update(ctx, cm, metav1.UpdateOptions{})
		}
	})

	// Without the flag, link edits coredns but warns that it will be reverted.
	_, stderr, err := theLab.Kubectl(ctx, nil, "mesh", "link", "--from", "cluster3", "--to", "cluster1", "--dry-run=client")
	if err != nil || !strings.Contains(stderr, "Reconcile") || !strings.Contains(stderr, "--dns-configmap kube-system/coredns-custom") {
		t.Fatalf("want a warning about the addon manager: %v\n%s", err, stderr)
	}

	kubectlMesh(t, "link", "--from", "cluster3", "--to", "cluster1", "--dns-configmap", "kube-system/coredns-custom")
	got, err := cms.Get(ctx, "coredns-custom", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["log.override"] != "log\n" || got.Data[dns.CustomKey] != dns.Block(istioCoreDNSIP(t, "cluster3")) {
		t.Fatalf("coredns-custom = %q", got.Data)
	}
	if now, _ := cms.Get(ctx, "coredns", metav1.GetOptions{}); now.ResourceVersion != coredns.ResourceVersion {
		t.Fatal("link edited coredns although --dns-configmap named coredns-custom")
	}
	kubectlMesh(t, "unlink", "--from", "cluster3", "--to", "cluster1")
	got, err = cms.Get(ctx, "coredns-custom", metav1.GetOptions{})
	if err != nil || !maps.Equal(got.Data, custom.Data) {
		t.Fatalf("coredns-custom not restored: %q (%v)", got.Data, err)
	}
}
