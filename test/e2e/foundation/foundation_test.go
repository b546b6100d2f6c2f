// Package foundation checks the lab itself end to end: real API servers with
// Istio's CRDs and furniture, the real kubectl, and plugin discovery of
// kubectl-mesh.
package foundation

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

var theLab *lab.Lab

func TestMain(m *testing.M) {
	os.Exit(lab.RunTests(m, lab.Options{Clusters: []string{"cluster1", "cluster2"}}, func(_ context.Context, l *lab.Lab, _ string) (func(), error) {
		theLab = l
		return nil, nil
	}))
}

func seed(t *testing.T, name string) string {
	t.Helper()
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "test", "seeds", name)
}

func TestSeedServiceEntryRoundTrip(t *testing.T) {
	ctx := t.Context()
	for _, c := range theLab.Clusters {
		t.Run(c.Name, func(t *testing.T) {
			if _, _, err := theLab.Kubectl(ctx, nil, "--context", c.Name, "apply", "-f", seed(t, "httpbin-bar.yaml")); err != nil {
				t.Fatal(err)
			}
			// Read it back through a different API version than it was
			// written with: the CRD serves v1alpha3, v1beta1 and v1.
			out, _, err := theLab.Kubectl(ctx, nil, "--context", c.Name, "get", "serviceentries.v1.networking.istio.io", "-n", "foo", "httpbin-bar", "-o", "json")
			if err != nil {
				t.Fatal(err)
			}
			var se struct {
				APIVersion string `json:"apiVersion"`
				Spec       struct {
					Hosts      []string `json:"hosts"`
					Addresses  []string `json:"addresses"`
					Location   string   `json:"location"`
					Resolution string   `json:"resolution"`
					Endpoints  []struct {
						Address string            `json:"address"`
						Labels  map[string]string `json:"labels"`
						Ports   map[string]int    `json:"ports"`
					} `json:"endpoints"`
				} `json:"spec"`
			}
			if err := json.Unmarshal([]byte(out), &se); err != nil {
				t.Fatalf("decode %s: %v", out, err)
			}
			if se.APIVersion != "networking.istio.io/v1" || len(se.Spec.Hosts) != 1 || se.Spec.Hosts[0] != "httpbin.bar.global" ||
				len(se.Spec.Addresses) != 1 || se.Spec.Addresses[0] != "240.0.0.2" || se.Spec.Location != "MESH_INTERNAL" ||
				se.Spec.Resolution != "DNS" || len(se.Spec.Endpoints) != 1 || se.Spec.Endpoints[0].Ports["http1"] != 15443 ||
				se.Spec.Endpoints[0].Labels["cluster"] != "cluster2" {
				t.Fatalf("read back a different entry: %s", out)
			}
			// And through the dynamic client, to be sure it is stored, not echoed.
			u, err := c.Dynamic.Resource(rules.ServiceEntryGVR).Namespace("foo").Get(ctx, "httpbin-bar", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if u.GetUID() == "" {
				t.Fatal("stored ServiceEntry has no UID")
			}
		})
	}
}

func TestIstioCRDsEstablished(t *testing.T) {
	out, _, err := theLab.Kubectl(t.Context(), nil, "--context", "cluster2", "api-resources", "--api-group", "networking.istio.io", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"serviceentries.networking.istio.io", "destinationrules.networking.istio.io", "gateways.networking.istio.io", "virtualservices.networking.istio.io"} {
		if !strings.Contains(out, want) {
			t.Errorf("api-resources lacks %s:\n%s", want, out)
		}
	}
}

func TestFurniture(t *testing.T) {
	ctx := t.Context()
	tests := map[string]struct {
		context, jsonpath, want string
	}{
		"cluster1 gateway IP":       {"cluster1", `{.status.loadBalancer.ingress[0].ip}`, lab.IngressIPCluster1},
		"cluster2 gateway hostname": {"cluster2", `{.status.loadBalancer.ingress[0].hostname}`, lab.IngressHostnameCluster2},
		"gateway tls port":          {"cluster1", `{.spec.ports[?(@.name=="tls")].port}`, "15443"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, _, err := theLab.Kubectl(ctx, nil, "--context", tc.context, "get", "svc", "-n", "istio-system", "istio-ingressgateway", "-o", "jsonpath="+tc.jsonpath)
			if err != nil {
				t.Fatal(err)
			}
			if out != tc.want {
				t.Fatalf("%s: got %q, want %q", tc.jsonpath, out, tc.want)
			}
		})
	}
	c2 := theLab.Cluster("cluster2")
	if _, err := c2.Kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{}); err != nil {
		t.Errorf("cluster2 kube-dns ConfigMap: %v", err)
	}
	c1 := theLab.Cluster("cluster1")
	cm, err := c1.Kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil || !strings.Contains(cm.Data["Corefile"], "kubernetes cluster.local") {
		t.Errorf("cluster1 coredns ConfigMap: %v %v", err, cm)
	}
	pods, err := c2.Kube.CoreV1().Pods("hello").List(ctx, metav1.ListOptions{LabelSelector: "app=helloworld"})
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for _, p := range pods.Items {
		versions = append(versions, p.Labels["version"])
	}
	if strings.Join(versions, ",") != "v2,v3" {
		t.Errorf("cluster2 helloworld versions = %v, want v2,v3", versions)
	}
	nodes, err := c1.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 || len(nodes.Items[0].Status.Addresses) < 2 {
		t.Errorf("cluster1 nodes lack addresses: %v %v", err, nodes)
	}
}

func TestPluginDiscovery(t *testing.T) {
	ctx := t.Context()
	out, _, err := theLab.Kubectl(ctx, nil, "plugin", "list", "--name-only")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "kubectl-mesh") {
		t.Fatalf("kubectl plugin list does not list kubectl-mesh:\n%s", out)
	}
	out, _, err = theLab.Kubectl(ctx, nil, "mesh", "version", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Version, Commit string }
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("kubectl mesh version -o json: %v: %s", err, out)
	}
	if v.Version != lab.TestVersion || v.Commit != "lab" {
		t.Fatalf("kubectl mesh version = %+v, want the stamped %s", v, lab.TestVersion)
	}
	out, _, err = theLab.Kubectl(ctx, nil, "mesh", "--help")
	if err != nil || !strings.Contains(out, "kubectl mesh [command]") {
		t.Fatalf("kubectl mesh --help does not read as kubectl mesh: %v\n%s", err, out)
	}
}
