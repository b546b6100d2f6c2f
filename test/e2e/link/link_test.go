package link

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/dns"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

var (
	rootOnce sync.Once
	root     *ca
)

// trust gives every named cluster an intermediate of one shared root.
func trust(t *testing.T, clusters ...string) *ca {
	t.Helper()
	rootOnce.Do(func() { root = newCA(t, "mesh root", nil) })
	for _, c := range clusters {
		installCacerts(t, c, root)
	}
	return root
}

func configMap(t *testing.T, cluster, ns, name string) *corev1.ConfigMap {
	t.Helper()
	cm, err := theLab.Cluster(cluster).Kube.CoreV1().ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func istioCoreDNSIP(t *testing.T, cluster string) string {
	t.Helper()
	svc, err := theLab.Cluster(cluster).Kube.CoreV1().Services("istio-system").Get(t.Context(), "istiocoredns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc.Spec.ClusterIP
}

func TestLinkCoreDNSAndKubeDNSThenUnlinkRestoresExactly(t *testing.T) {
	trust(t, "cluster1", "cluster2")
	corednsBefore := configMap(t, "cluster1", "kube-system", "coredns")
	kubednsBefore := configMap(t, "cluster2", "kube-system", "kube-dns")

	out := kubectlMesh(t, "link", "--from", "cluster1", "--to", "cluster2")
	for _, want := range []string{"trust", "dns", "gateway address", lab.IngressHostnameCluster2 + ":15443", "record"} {
		if !strings.Contains(out, want) {
			t.Errorf("link output lacks %q:\n%s", want, out)
		}
	}
	ip1 := istioCoreDNSIP(t, "cluster1")
	corefile := configMap(t, "cluster1", "kube-system", "coredns").Data["Corefile"]
	if fwd, err := dns.GlobalForwarding(corefile); err != nil || !slices.Equal(fwd, []string{ip1}) {
		t.Fatalf("cluster1 Corefile forwards global to %v (%v), want %s:\n%s", fwd, err, ip1, corefile)
	}
	if !strings.HasPrefix(corefile, lab.CoreDNSCorefile) {
		t.Fatalf("cluster1 Corefile lost its original text:\n%s", corefile)
	}
	before, _ := dns.ParseCorefile(lab.CoreDNSCorefile)
	after, _ := dns.ParseCorefile(corefile)
	if len(after) != len(before)+1 || !slices.EqualFunc(before, after[:len(before)], dns.ServerBlock.Equal) {
		t.Fatalf("cluster1 Corefile changed other blocks:\n%s", corefile)
	}
	gw, err := theLab.Cluster("cluster2").Dynamic.Resource(rules.GatewayGVR).Namespace("istio-system").Get(t.Context(), "cross-network-gateway", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("cluster2 cross-network-gateway: %v", err)
	}
	// The remote SNI names cluster2's own services: the Gateway passes
	// *.local through, on the pods of the gateway whose address export uses.
	if b, _ := json.Marshal(gw.Object["spec"]); !strings.Contains(string(b), `"AUTO_PASSTHROUGH"`) || !strings.Contains(string(b), `"*.local"`) || strings.Contains(string(b), `"*.global"`) ||
		!strings.Contains(string(b), `15443`) || !strings.Contains(string(b), `"selector":{"istio":"ingressgateway"}`) {
		t.Fatalf("cluster2 Gateway spec = %s", b)
	}
	rec := configMap(t, "cluster1", "mesh-system", "mesh-link-cluster2")
	if rec.Data["peer"] != "cluster2" || rec.Data["gateway"] != lab.IngressHostnameCluster2+":15443" || rec.Data["server"] == "" {
		t.Fatalf("link record = %v", rec.Data)
	}

	out = kubectlMesh(t, "link", "--from", "cluster2", "--to", "cluster1")
	ip2 := istioCoreDNSIP(t, "cluster2")
	stub := map[string][]string{}
	if err := json.Unmarshal([]byte(configMap(t, "cluster2", "kube-system", "kube-dns").Data["stubDomains"]), &stub); err != nil {
		t.Fatal(err)
	}
	want := maps.Clone(lab.KubeDNSStubDomains)
	want["global"] = []string{ip2}
	if !maps.EqualFunc(stub, want, slices.Equal) {
		t.Fatalf("cluster2 stubDomains = %v, want %v\n%s", stub, want, out)
	}

	// Running both again changes nothing: not a byte, not a resourceVersion.
	snap := func() map[string]string {
		return map[string]string{
			"coredns":  configMap(t, "cluster1", "kube-system", "coredns").ResourceVersion,
			"kube-dns": configMap(t, "cluster2", "kube-system", "kube-dns").ResourceVersion,
			"record1":  configMap(t, "cluster1", "mesh-system", "mesh-link-cluster2").ResourceVersion,
			"record2":  configMap(t, "cluster2", "mesh-system", "mesh-link-cluster1").ResourceVersion,
		}
	}
	rv := snap()
	again := kubectlMesh(t, "link", "--from", "cluster1", "--to", "cluster2", "--bidirectional")
	if strings.Contains(again, "changed") {
		t.Errorf("second link reports changes:\n%s", again)
	}
	if got := snap(); !maps.Equal(got, rv) {
		t.Fatalf("second link wrote objects: %v → %v", rv, got)
	}

	kubectlMesh(t, "unlink", "--from", "cluster1", "--to", "cluster2", "--bidirectional")
	if got := configMap(t, "cluster1", "kube-system", "coredns"); !maps.Equal(got.Data, corednsBefore.Data) {
		t.Fatalf("cluster1 coredns not restored:\n%q\nwant\n%q", got.Data, corednsBefore.Data)
	}
	if got := configMap(t, "cluster2", "kube-system", "kube-dns"); !maps.Equal(got.Data, kubednsBefore.Data) {
		t.Fatalf("cluster2 kube-dns not restored:\n%q\nwant\n%q", got.Data, kubednsBefore.Data)
	}
	for _, c := range []string{"cluster1", "cluster2"} {
		_, err := theLab.Cluster(c).Kube.CoreV1().ConfigMaps("mesh-system").Get(t.Context(), "mesh-link-"+map[string]string{"cluster1": "cluster2", "cluster2": "cluster1"}[c], metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s: link record still there after unlink: %v", c, err)
		}
	}
}

func TestLinkDryRunWritesNothing(t *testing.T) {
	trust(t, "cluster1", "cluster2")
	before := configMap(t, "cluster1", "kube-system", "coredns")
	for _, mode := range []string{"client", "server"} {
		t.Run(mode, func(t *testing.T) {
			out := kubectlMesh(t, "link", "--from", "cluster1", "--to", "cluster2", "--dry-run="+mode, "-o", "yaml")
			for _, want := range []string{"kind: ConfigMap", "global:53", "name: mesh-link-cluster2"} {
				if !strings.Contains(out, want) {
					t.Errorf("-o yaml lacks %q:\n%s", want, out)
				}
			}
			if got := configMap(t, "cluster1", "kube-system", "coredns"); got.ResourceVersion != before.ResourceVersion {
				t.Fatalf("--dry-run=%s changed the Corefile:\n%s", mode, got.Data["Corefile"])
			}
			if _, err := theLab.Cluster("cluster1").Kube.CoreV1().ConfigMaps("mesh-system").Get(t.Context(), "mesh-link-cluster2", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Fatalf("--dry-run=%s wrote a link record: %v", mode, err)
			}
		})
	}
}

func TestLinkRefusesDifferentRoots(t *testing.T) {
	trust(t, "cluster1")
	other := newCA(t, "another root", nil)
	installCacerts(t, "cluster3", other)
	t.Cleanup(func() { trust(t, "cluster3") })
	before := configMap(t, "cluster1", "kube-system", "coredns")
	_, stderr := meshFails(t, "link", "--from", "cluster1", "--to", "cluster3")
	for _, want := range []string{pki.Fingerprint(root.cert), pki.Fingerprint(other.cert), "kubectl mesh certs install", "--skip-trust-check"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("refusal lacks %q:\n%s", want, stderr)
		}
	}
	if got := configMap(t, "cluster1", "kube-system", "coredns"); got.ResourceVersion != before.ResourceVersion {
		t.Fatal("a refused link changed the Corefile")
	}
}

// An older link wrote a *.global Gateway, which routes nothing on Istio ≥
// 1.14: a re-run of link replaces ours of that name and removes other ones
// of ours, leaving a user's *.global Gateway alone; unlink removes ours too.
func TestLinkRemovesOlderGlobalGateways(t *testing.T) {
	trust(t, "cluster1", "cluster3")
	gws := theLab.Cluster("cluster3").Dynamic.Resource(rules.GatewayGVR).Namespace("istio-system")
	old := func(name string, managed bool) *unstructured.Unstructured {
		labels := map[string]any{}
		if managed {
			labels["app.kubernetes.io/managed-by"] = "kubectl-mesh"
		}
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
			"metadata": map[string]any{"name": name, "namespace": "istio-system", "labels": labels},
			"spec": map[string]any{"selector": map[string]any{"istio": "ingressgateway"}, "servers": []any{map[string]any{
				"port": map[string]any{"number": int64(15443), "name": "tls", "protocol": "TLS"},
				"tls":  map[string]any{"mode": "AUTO_PASSTHROUGH"}, "hosts": []any{"*.global"},
			}}},
		}}
	}
	for _, gw := range []*unstructured.Unstructured{old("cross-network-gateway", true), old("older-global", true), old("users-global", false)} {
		if _, err := gws.Create(t.Context(), gw, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, n := range []string{"cross-network-gateway", "older-global", "users-global"} {
			_ = gws.Delete(context.Background(), n, metav1.DeleteOptions{})
		}
	})
	out := kubectlMesh(t, "link", "--from", "cluster1", "--to", "cluster3")
	t.Cleanup(func() {
		_, _, _ = theLab.Kubectl(context.Background(), nil, "mesh", "unlink", "--from", "cluster1", "--to", "cluster3")
	})
	if !strings.Contains(out, "Gateway istio-system/older-global removed") {
		t.Errorf("link does not say it removed the older *.global Gateway:\n%s", out)
	}
	if _, err := gws.Get(t.Context(), "older-global", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("older *.global Gateway of ours still there: %v", err)
	}
	if _, err := gws.Get(t.Context(), "users-global", metav1.GetOptions{}); err != nil {
		t.Errorf("a user's *.global Gateway was touched: %v", err)
	}
	gw, err := gws.Get(t.Context(), "cross-network-gateway", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(gw.Object["spec"]); !strings.Contains(string(b), `"*.local"`) || strings.Contains(string(b), `"*.global"`) {
		t.Fatalf("cross-network-gateway after link = %s, want it passing *.local only", b)
	}
}
