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

// istioMeshConfig is the mesh config of a current Istio install, as its
// ConfigMap istio-system/istio holds it (DNS proxying off).
const istioMeshConfig = `accessLogFile: /dev/stdout
defaultConfig:
  discoveryAddress: istiod.istio-system.svc:15012
  proxyMetadata: {}
  tracing:
    zipkin:
      address: zipkin.istio-system:9411
defaultProviders:
  metrics:
  - prometheus
enablePrometheusMerge: true
rootNamespace: istio-system
trustDomain: cluster.local
`

// Istio 1.8+ has no istiocoredns: the sidecars answer .global names when
// Istio's DNS proxying is on. link says so when it is, says what to set
// when it is not, and --enable-dns-capture sets it; unlink gives the mesh
// config back byte for byte.
func TestLinkWithoutIstioCoreDNS(t *testing.T) {
	trust(t, "cluster3", "cluster1")
	ctx := t.Context()
	kube := theLab.Cluster("cluster3").Kube
	svcs := kube.CoreV1().Services("istio-system")
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
	corefile := configMap(t, "cluster3", "kube-system", "coredns")

	// No mesh config either: not an Istio that link can make resolve.
	_, stderr := meshFails(t, "link", "--from", "cluster3", "--to", "cluster1")
	if !strings.Contains(stderr, "no istiocoredns") || !strings.Contains(stderr, "istio-system/istio") {
		t.Fatalf("refusal does not explain the missing istiocoredns and mesh config:\n%s", stderr)
	}

	cms := kube.CoreV1().ConfigMaps("istio-system")
	mesh := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "istio", Namespace: "istio-system"}, Data: map[string]string{"mesh": istioMeshConfig, "meshNetworks": "networks: {}"}}
	if _, err := cms.Create(ctx, mesh, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cms.Delete(context.Background(), "istio", metav1.DeleteOptions{}) })

	// DNS proxying off: link succeeds and says exactly what to set.
	out, stderr, err := theLab.Kubectl(ctx, nil, "mesh", "link", "--from", "cluster3", "--to", "cluster1")
	if err != nil {
		t.Fatalf("link with DNS proxying off: %v\n%s", err, out)
	}
	for _, want := range []string{"action needed", "DNS proxying is off"} {
		if !strings.Contains(out+stderr, want) {
			t.Errorf("link output lacks %q:\n%s\n%s", want, out, stderr)
		}
	}
	for _, want := range []string{"defaultConfig.proxyMetadata.ISTIO_META_DNS_CAPTURE", "istio-system/istio", "--enable-dns-capture"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the warning lacks %q:\n%s", want, stderr)
		}
	}
	if got := configMap(t, "cluster3", "istio-system", "istio"); got.Data["mesh"] != istioMeshConfig {
		t.Fatalf("link without --enable-dns-capture changed the mesh config:\n%s", got.Data["mesh"])
	}

	// --enable-dns-capture turns it on, once.
	out = kubectlMesh(t, "link", "--from", "cluster3", "--to", "cluster1", "--enable-dns-capture")
	edited := configMap(t, "cluster3", "istio-system", "istio")
	if !strings.Contains(edited.Data["mesh"], `ISTIO_META_DNS_CAPTURE: "true"`) || !strings.Contains(edited.Data["mesh"], "discoveryAddress: istiod.istio-system.svc:15012") {
		t.Fatalf("mesh config after --enable-dns-capture:\n%s\n%s", edited.Data["mesh"], out)
	}
	if !strings.Contains(out, "restart") {
		t.Errorf("link does not say that proxies pick the setting up on restart:\n%s", out)
	}
	again := kubectlMesh(t, "link", "--from", "cluster3", "--to", "cluster1", "--enable-dns-capture")
	if got := configMap(t, "cluster3", "istio-system", "istio"); got.ResourceVersion != edited.ResourceVersion || !strings.Contains(again, "DNS proxy answers") {
		t.Fatalf("second link changed the mesh config or did not report it on:\n%s", again)
	}
	if got := configMap(t, "cluster3", "kube-system", "coredns"); got.ResourceVersion != corefile.ResourceVersion {
		t.Fatal("link without istiocoredns edited the Corefile")
	}

	// unlink: byte for byte what it was, the other key untouched.
	kubectlMesh(t, "unlink", "--from", "cluster3", "--to", "cluster1")
	if got := configMap(t, "cluster3", "istio-system", "istio"); !maps.Equal(got.Data, mesh.Data) {
		t.Fatalf("unlink did not restore the mesh config:\n%q\nwant\n%q", got.Data, mesh.Data)
	}
}
