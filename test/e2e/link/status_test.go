package link

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

// exportedEntry is a ServiceEntry with the fields `kubectl mesh export`
// writes, for host NAME.NS.global served by source through its gateway.
func exportedEntry(ns, name, host, vip, source, gwHost string, gwPort int64) *unstructured.Unstructured {
	svcNS, svcName := strings.Split(host, ".")[1], strings.Split(host, ".")[0]
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "ServiceEntry",
		"metadata": map[string]any{
			"name": name, "namespace": ns,
			"labels": map[string]any{"app.kubernetes.io/managed-by": "kubectl-mesh"},
			"annotations": map[string]any{
				"mesh.kubectl-mesh.io/source-clusters": source,
				"mesh.kubectl-mesh.io/exported-from":   svcNS + "/" + svcName,
			},
		},
		"spec": map[string]any{
			"hosts":      []any{host},
			"location":   "MESH_INTERNAL",
			"resolution": "DNS",
			"ports":      []any{map[string]any{"name": "http1", "number": int64(8000), "protocol": "http"}},
			"endpoints": []any{map[string]any{
				"address": gwHost,
				"labels":  map[string]any{"cluster": source},
				"ports":   map[string]any{"http1": gwPort},
			}},
		},
	}}
	if vip != "" {
		u.Object["spec"].(map[string]any)["addresses"] = []any{vip}
	}
	return u
}

// helloEntry is an entry for helloworld.hello.global in cluster1 as the
// seed documents write it: port 5000, cluster2's gateway, no SNI anywhere.
func helloEntry(vip string) *unstructured.Unstructured {
	se := exportedEntry("hello", "helloworld-hello", "helloworld.hello.global", vip, "cluster2", lab.IngressHostnameCluster2, 15443)
	spec := se.Object["spec"].(map[string]any)
	spec["ports"] = []any{map[string]any{"name": "http", "number": int64(5000), "protocol": "HTTP"}}
	spec["endpoints"].([]any)[0].(map[string]any)["ports"] = map[string]any{"http": int64(15443)}
	return se
}

func globalRule(ns, name, host string, subsets map[string]map[string]string) *unstructured.Unstructured {
	var ss []any
	for _, n := range slices.Sorted(mapsKeys(subsets)) {
		labels := map[string]any{}
		for k, v := range subsets[n] {
			labels[k] = v
		}
		ss = append(ss, map[string]any{"name": n, "labels": labels})
	}
	spec := map[string]any{
		"host":          host,
		"trafficPolicy": map[string]any{"tls": map[string]any{"mode": "ISTIO_MUTUAL"}},
	}
	if len(ss) > 0 {
		spec["subsets"] = ss
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "DestinationRule",
		"metadata":   map[string]any{"name": name, "namespace": ns, "labels": map[string]any{"app.kubernetes.io/managed-by": "kubectl-mesh"}},
		"spec":       spec,
	}}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// create makes obj in cluster and deletes it when the test ends.
func create(t *testing.T, cluster string, gvr schema.GroupVersionResource, obj *unstructured.Unstructured) {
	t.Helper()
	ri := theLab.Cluster(cluster).Dynamic.Resource(gvr).Namespace(obj.GetNamespace())
	if _, err := ri.Create(t.Context(), obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create %s %s/%s: %v", gvr.Resource, obj.GetNamespace(), obj.GetName(), err)
	}
	t.Cleanup(func() {
		_ = ri.Delete(context.Background(), obj.GetName(), metav1.DeleteOptions{})
	})
}

type statusReport struct {
	Clusters []struct {
		Context    string   `json:"context"`
		RootsMatch bool     `json:"rootsMatch"`
		GlobalDNS  bool     `json:"globalDNS"`
		Gateway    string   `json:"gateway"`
		Webhook    string   `json:"webhook"`
		Exported   []string `json:"exported"`
	} `json:"clusters"`
	Links []struct {
		From, To  string
		Reachable bool `json:"reachable"`
	} `json:"links"`
	Problems []mesh.Problem `json:"problems"`
}

func decodeStatus(t *testing.T, out string) statusReport {
	t.Helper()
	var r statusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	return r
}

// linkedExported links cluster1 → cluster2 and exports httpbin.bar of
// cluster2 into namespace foo of cluster1 with the real kubectl mesh, and
// returns the entry's VIP.
func linkedExported(t *testing.T) string {
	t.Helper()
	trust(t, "cluster1", "cluster2", "cluster3")
	kubectlMesh(t, "link", "--from", "cluster1", "--to", "cluster2")
	t.Cleanup(func() {
		_, _, _ = theLab.Kubectl(context.Background(), nil, "mesh", "unlink", "--from", "cluster1", "--to", "cluster2")
	})
	kubectlMesh(t, "export", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster1", "--target-namespace", "foo")
	t.Cleanup(func() {
		_, _, _ = theLab.Kubectl(context.Background(), nil, "mesh", "unexport", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster1", "--target-namespace", "foo")
	})
	se, err := theLab.Cluster("cluster1").Dynamic.Resource(rules.ServiceEntryGVR).Namespace("foo").Get(t.Context(), "httpbin-bar", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vips, _, _ := unstructured.NestedStringSlice(se.Object, "spec", "addresses")
	if len(vips) != 1 {
		t.Fatalf("exported entry addresses = %v", vips)
	}
	return vips[0]
}

func TestStatusCleanMeshHasNoProblems(t *testing.T) {
	linkedExported(t)
	out := kubectlMesh(t, "status", "-o", "json")
	r := decodeStatus(t, out)
	if len(r.Problems) != 0 {
		t.Fatalf("clean mesh reports problems:\n%s", out)
	}
	if len(r.Clusters) != len(theLab.Clusters) {
		t.Fatalf("default contexts: want all %d clusters, got %s", len(theLab.Clusters), out)
	}
	c1 := r.Clusters[0]
	if c1.Context != "cluster1" || !c1.RootsMatch || !c1.GlobalDNS || c1.Gateway != lab.IngressIPCluster1+":15443" || c1.Webhook != "not installed" || !slices.Equal(c1.Exported, []string{"httpbin.bar.global"}) {
		t.Fatalf("cluster1 row = %+v", c1)
	}
	if len(r.Links) != 1 || r.Links[0].From != "cluster1" || r.Links[0].To != "cluster2" || !r.Links[0].Reachable {
		t.Fatalf("links = %+v", r.Links)
	}
	table := kubectlMesh(t, "status", "--contexts", "cluster1,cluster2")
	t.Log(table)
	for _, want := range []string{"CLUSTER", "ROOTS MATCH", "cluster1 -> cluster2", "No problems found.",
		// The route check says which gateway and SNI a request takes.
		"CALLER", "outbound_.8000_._.httpbin.bar.svc.cluster.local", "outbound_.8000_.v1_.httpbin.bar.svc.cluster.local", "istio-system/cross-network-gateway"} {
		if !strings.Contains(table, want) {
			t.Errorf("status table lacks %q:\n%s", want, table)
		}
	}
}

func TestStatusReportsEachProblem(t *testing.T) {
	vip := linkedExported(t)
	tests := map[string]struct {
		inject     func(t *testing.T)
		kind       string
		wantObject string
		wantText   string
	}{
		"duplicate VIP": {
			inject: func(t *testing.T) {
				se := exportedEntry("hello", "copycat", "copycat.hello.global", vip, "cluster2", lab.IngressHostnameCluster2, 15443)
				se.SetLabels(nil) // someone's own entry, not exported
				create(t, "cluster1", rules.ServiceEntryGVR, se)
			},
			kind: mesh.ProblemDuplicateVIP, wantObject: "hello/copycat", wantText: vip,
		},
		"VIP outside class E rules": {
			inject: func(t *testing.T) {
				se := exportedEntry("hello", "auto-range", "helloworld.hello.global", "240.240.0.7", "cluster2", lab.IngressHostnameCluster2, 15443)
				create(t, "cluster1", rules.ServiceEntryGVR, se)
			},
			kind: mesh.ProblemInvalidVIP, wantObject: "hello/auto-range", wantText: "240.240.0.7",
		},
		"stale entry": {
			inject: func(t *testing.T) {
				create(t, "cluster1", rules.ServiceEntryGVR, exportedEntry("foo", "gone-bar", "gone.bar.global", "240.0.0.9", "cluster2", lab.IngressHostnameCluster2, 15443))
			},
			kind: mesh.ProblemStaleEntry, wantObject: "foo/gone-bar", wantText: "bar/gone",
		},
		"endpoint not at the source gateway": {
			inject: func(t *testing.T) {
				create(t, "cluster1", rules.ServiceEntryGVR, exportedEntry("hello", "helloworld-hello", "helloworld.hello.global", "240.0.0.11", "cluster2", "203.0.113.99", 15443))
			},
			kind: mesh.ProblemGatewayMismatch, wantObject: "hello/helloworld-hello", wantText: "203.0.113.99",
		},
		"subset selects pod labels": {
			inject: func(t *testing.T) {
				create(t, "cluster1", rules.DestinationRuleGVR, globalRule("foo", "httpbin-by-version", "httpbin.bar.global", map[string]map[string]string{"v2": {"version": "v2"}}))
			},
			kind: mesh.ProblemSubsetLabels, wantObject: "foo/httpbin-by-version", wantText: "version: v2",
		},
		"the seed documents' entry, without a DestinationRule": {
			inject: func(t *testing.T) {
				se := helloEntry("240.0.0.12")
				se.SetLabels(nil) // hand-written, as in the seed documents
				create(t, "cluster1", rules.ServiceEntryGVR, se)
			},
			kind: mesh.ProblemRouteNowhere, wantObject: "hello/helloworld-hello", wantText: "plain text",
		},
		"a .global rule without the remote SNI": {
			inject: func(t *testing.T) {
				create(t, "cluster1", rules.ServiceEntryGVR, helloEntry("240.0.0.13"))
				create(t, "cluster1", rules.DestinationRuleGVR, globalRule("hello", "helloworld-hello-global", "helloworld.hello.global", nil))
			},
			kind: mesh.ProblemRouteNowhere, wantObject: "hello/helloworld-hello", wantText: "outbound_.5000_._.helloworld.hello.global",
		},
		"peer not in the kubeconfig": {
			inject: func(t *testing.T) {
				injectRecord(t, "cluster9")
			},
			kind: mesh.ProblemPeerUnreachable, wantObject: "mesh-link-cluster9", wantText: "not in the kubeconfig",
		},
		"peer does not answer": {
			inject: func(t *testing.T) {
				addDeadContext(t, "cluster-down")
				injectRecord(t, "cluster-down")
			},
			kind: mesh.ProblemPeerUnreachable, wantObject: "mesh-link-cluster-down", wantText: "cluster-down",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.inject(t)
			out, stderr := meshFails(t, "status", "--contexts", "cluster1,cluster2", "-o", "json", "--peer-timeout", "2s")
			r := decodeStatus(t, out)
			if !hasProblem(r.Problems, tc.kind, tc.wantObject, tc.wantText) {
				t.Fatalf("status does not report %s on %s mentioning %q:\n%s\n%s", tc.kind, tc.wantObject, tc.wantText, out, stderr)
			}
			// Nothing else is wrong: every problem is about what was injected.
			for _, p := range r.Problems {
				if !strings.Contains(p.Object, tc.wantObject) && !strings.Contains(p.Message, tc.wantObject) {
					t.Errorf("a problem that is not about %s: %+v\n%s", tc.wantObject, p, out)
				}
			}
		})
	}
}

// hasProblem reports whether ps has a problem of kind on object whose
// message mentions text, with a fix.
func hasProblem(ps []mesh.Problem, kind, object, text string) bool {
	return slices.ContainsFunc(ps, func(p mesh.Problem) bool {
		return p.Kind == kind && strings.Contains(p.Object, object) && strings.Contains(p.Message, text) && p.Fix != ""
	})
}

// injectRecord writes a link record in cluster1 for peer.
func injectRecord(t *testing.T, peer string) {
	t.Helper()
	cm, err := (mesh.Record{Peer: peer, Server: "https://127.0.0.1:1", Gateway: "192.0.2.99:15443"}).ConfigMap()
	if err != nil {
		t.Fatal(err)
	}
	cms := theLab.Cluster("cluster1").Kube.CoreV1().ConfigMaps(rules.MeshNamespace)
	if _, err := cms.Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cms.Delete(context.Background(), cm.Name, metav1.DeleteOptions{}) })
}

// addDeadContext adds a context whose API server does not answer to the
// lab's kubeconfig, until the test ends.
func addDeadContext(t *testing.T, name string) {
	t.Helper()
	orig, err := os.ReadFile(theLab.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(orig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1", InsecureSkipTLSVerify: true}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: "nobody"}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	if err := clientcmd.WriteToFile(*cfg, theLab.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(theLab.Kubeconfig, orig, 0o600); err != nil {
			t.Error(err)
		}
	})
}
