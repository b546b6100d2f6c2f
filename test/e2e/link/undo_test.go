package link

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

// restoreConfigMapAfter puts a ConfigMap's data back when the test ends.
func restoreConfigMapAfter(t *testing.T, cluster, ns, name string) {
	t.Helper()
	orig := configMap(t, cluster, ns, name)
	t.Cleanup(func() {
		cms := theLab.Cluster(cluster).Kube.CoreV1().ConfigMaps(ns)
		cur, err := cms.Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Error(err)
			return
		}
		cur.Data = orig.Data
		if _, err := cms.Update(context.Background(), cur, metav1.UpdateOptions{}); err != nil {
			t.Error(err)
		}
	})
}

// newIstioCoreDNSIP re-creates istiocoredns in cluster until it gets
// another ClusterIP, as a reinstall of Istio's istiocoredns does.
func newIstioCoreDNSIP(t *testing.T, cluster string) string {
	t.Helper()
	svcs := theLab.Cluster(cluster).Kube.CoreV1().Services("istio-system")
	old := istioCoreDNSIP(t, cluster)
	for range 10 {
		svc, err := svcs.Get(t.Context(), "istiocoredns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := svcs.Delete(t.Context(), "istiocoredns", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		again := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace, Labels: svc.Labels}, Spec: svc.Spec}
		again.Spec.ClusterIP, again.Spec.ClusterIPs = "", nil
		created, err := svcs.Create(t.Context(), again, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if created.Spec.ClusterIP != old {
			return created.Spec.ClusterIP
		}
	}
	t.Fatalf("%s: istiocoredns keeps ClusterIP %s", cluster, old)
	return ""
}

// Issue 13, item 1: link, an administrator edits the DNS configuration
// around kubectl mesh's part, istiocoredns gets a new address and link runs
// again, then unlink: only kubectl mesh's part comes out, the
// administrator's edit stays.
func TestUnlinkAfterRelinkKeepsOthersDNSEdits(t *testing.T) {
	trust(t, "cluster1", "cluster2")
	restoreConfigMapAfter(t, "cluster1", "kube-system", "coredns")
	restoreConfigMapAfter(t, "cluster2", "kube-system", "kube-dns")
	edit := func(cluster, name string, change func(map[string]string)) map[string]string {
		t.Helper()
		cms := theLab.Cluster(cluster).Kube.CoreV1().ConfigMaps("kube-system")
		cm, err := cms.Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		change(cm.Data)
		if _, err := cms.Update(t.Context(), cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		return cm.Data
	}

	kubectlMesh(t, "link", "--from", "cluster1", "--to", "cluster2", "--bidirectional")
	edit("cluster1", "coredns", func(d map[string]string) {
		d["Corefile"] = strings.Replace(d["Corefile"], "    cache 30\n    forward . 10.150.0.1", "    cache 45\n    forward . 10.150.0.1", 1)
	})
	edit("cluster2", "kube-dns", func(d map[string]string) {
		stubs := map[string][]string{}
		if err := json.Unmarshal([]byte(d["stubDomains"]), &stubs); err != nil {
			t.Fatal(err)
		}
		stubs["acme.test"] = []string{"10.1.1.1"}
		b, _ := json.Marshal(stubs)
		d["stubDomains"] = string(b)
	})
	ip1, ip2 := newIstioCoreDNSIP(t, "cluster1"), newIstioCoreDNSIP(t, "cluster2")
	out := kubectlMesh(t, "link", "--from", "cluster1", "--to", "cluster2", "--bidirectional")
	for _, ip := range []string{ip1, ip2} {
		if !strings.Contains(out, "istiocoredns "+ip) {
			t.Fatalf("second link does not forward to the new istiocoredns %s:\n%s", ip, out)
		}
	}

	kubectlMesh(t, "unlink", "--from", "cluster1", "--to", "cluster2", "--bidirectional")
	wantCorefile := strings.Replace(lab.CoreDNSCorefile, "    cache 30\n    forward . 10.150.0.1", "    cache 45\n    forward . 10.150.0.1", 1)
	if got := configMap(t, "cluster1", "kube-system", "coredns").Data["Corefile"]; got != wantCorefile {
		t.Errorf("cluster1 Corefile after unlink:\n%s\nwant the administrator's edit and no global block:\n%s", got, wantCorefile)
	}
	stubs := map[string][]string{}
	if err := json.Unmarshal([]byte(configMap(t, "cluster2", "kube-system", "kube-dns").Data["stubDomains"]), &stubs); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"corp.example.com": {"10.150.0.1"}, "acme.test": {"10.1.1.1"}}
	if !maps.EqualFunc(stubs, want, slices.Equal) {
		t.Errorf("cluster2 stubDomains after unlink = %v, want %v", stubs, want)
	}
}

// Issue 13, item 2: link records what it is about to change before it
// changes it, so that a link failing at the gateway step (after DNS was
// edited) leaves a record, status reports it, and unlink restores DNS
// exactly.
func TestUnlinkAfterFailedLinkRestoresDNS(t *testing.T) {
	trust(t, "cluster1", "cluster2")
	before := configMap(t, "cluster1", "kube-system", "coredns")
	restoreConfigMapAfter(t, "cluster1", "kube-system", "coredns")

	out, stderr := meshFails(t, "link", "--from", "cluster1", "--to", "cluster2", "--gateway-service", "no-such-gateway")
	if !strings.Contains(stderr, "no-such-gateway") || !strings.Contains(stderr, "unlink") {
		t.Errorf("the failure does not name the gateway and the way back:\n%s\n%s", out, stderr)
	}
	if got := configMap(t, "cluster1", "kube-system", "coredns"); got.Data["Corefile"] == before.Data["Corefile"] {
		t.Fatalf("link did not get to the DNS step before failing; the test needs a DNS edit to undo:\n%s", out)
	}
	rec := configMap(t, "cluster1", "mesh-system", "mesh-link-cluster2")
	if !strings.Contains(rec.Data["record.json"], `"pending": true`) {
		t.Errorf("the record of a failed link does not say it is pending:\n%s", rec.Data["record.json"])
	}
	status, _, _ := theLab.Kubectl(t.Context(), nil, "mesh", "status", "--contexts", "cluster1,cluster2")
	if !strings.Contains(status, "LinkIncomplete") {
		t.Errorf("status does not report the unfinished link:\n%s", status)
	}

	kubectlMesh(t, "unlink", "--from", "cluster1", "--to", "cluster2")
	if got := configMap(t, "cluster1", "kube-system", "coredns"); !maps.Equal(got.Data, before.Data) {
		t.Fatalf("unlink after a failed link did not restore the Corefile:\n%q\nwant\n%q", got.Data, before.Data)
	}
}
