// Package statustest builds fake clusters for the tests of `kubectl mesh
// status`: the engine's (pkg/status) and the command's (pkg/plugin) run
// on the same meshes. It may import pkg/cli, pkg/mesh, pkg/rules and
// client-go's fakes.
package statustest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh/meshtest"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// ListKinds are the list kinds of the Istio resources status lists, for
// dynamicfake.NewSimpleDynamicClientWithCustomListKinds.
var ListKinds = map[schema.GroupVersionResource]string{
	rules.ServiceEntryGVR:    "ServiceEntryList",
	rules.DestinationRuleGVR: "DestinationRuleList",
	rules.GatewayGVR:         "GatewayList",
	rules.VirtualServiceGVR:  "VirtualServiceList",
}

const (
	// HandWrittenEntry is the seed's hand-written entry: no
	// DestinationRule goes with it.
	HandWrittenEntry = meshtest.HTTPBinEntry
	// RemoteSNIRule gives HandWrittenEntry the SNIs of the source's
	// Service and its subset v2.
	RemoteSNIRule = meshtest.RemoteSNIRule
	// SourceLocalRule defines the subset v2 in the source.
	SourceLocalRule = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: bar}
spec:
  host: httpbin.bar.svc.cluster.local
  subsets:
  - {name: v2, labels: {version: v2}}
`
	// LocalPassthrough is the source gateway's *.local AUTO_PASSTHROUGH
	// server.
	LocalPassthrough = meshtest.LocalPassthrough
)

// Cluster is a cluster with istio-system, an ingress gateway Service
// with a load balancer address, the given typed objects and Istio objects
// (YAML documents).
func Cluster(t testing.TB, name, lbIP string, kube []runtime.Object, docs ...string) *cli.Cluster {
	t.Helper()
	gw := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-ingressgateway", Namespace: rules.IstioSystemNamespace},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"istio": "ingressgateway"},
			Ports:    []corev1.ServicePort{{Name: "tls", Port: 15443, TargetPort: intstr.FromInt32(15443), NodePort: 31443}},
		},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: lbIP}}}},
	}
	kube = append(kube, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rules.IstioSystemNamespace}}, gw)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), ListKinds)
	// Created through their resources: the fake's guess from the kind
	// would put a Gateway under "gatewaies".
	resources := map[string]schema.GroupVersionResource{
		"ServiceEntry": rules.ServiceEntryGVR, "DestinationRule": rules.DestinationRuleGVR, "Gateway": rules.GatewayGVR,
	}
	for _, d := range docs {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(d), &u.Object); err != nil {
			t.Fatalf("%v\n%s", err, d)
		}
		gvr, ok := resources[u.GetKind()]
		if !ok {
			t.Fatalf("statustest.Cluster: unexpected kind %q", u.GetKind())
		}
		if _, err := dyn.Resource(gvr).Namespace(u.GetNamespace()).Create(t.Context(), u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return &cli.Cluster{Context: name, Config: &rest.Config{}, Kube: fake.NewClientset(kube...), Dynamic: dyn}
}

// HTTPBinService is the source's Service bar/httpbin, port 8000.
func HTTPBinService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "httpbin", Namespace: "bar"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "httpbin"}, Ports: []corev1.ServicePort{{Name: "http", Port: 8000}}},
	}
}

// Mesh is cluster1 calling into cluster2, the source of bar/httpbin with
// its passthrough Gateway; cluster1 holds the given Istio objects.
func Mesh(t testing.TB, cluster1 []runtime.Object, docs ...string) map[string]*cli.Cluster {
	t.Helper()
	return map[string]*cli.Cluster{
		"cluster1": Cluster(t, "cluster1", "192.0.2.1", cluster1, docs...),
		"cluster2": Cluster(t, "cluster2", "203.0.113.7", []runtime.Object{HTTPBinService()}, SourceLocalRule, LocalPassthrough),
	}
}

// RichMesh is two fake clusters with every table of status filled: a link
// from cluster1 to cluster2, a pending link to cluster9 (not in the
// kubeconfig), a remote secret whose server refuses connections, and a
// route; the kubeconfig names both clusters. Status reports three
// problems on it.
func RichMesh(t testing.TB) (clusters map[string]*cli.Cluster, kubeconfig string) {
	t.Helper()
	var objs []runtime.Object
	for _, r := range []mesh.Record{
		{Peer: "cluster2", Gateway: "203.0.113.7:15443"},
		{Peer: "cluster9", Gateway: "198.51.100.9:15443", Pending: true},
	} {
		cm, err := r.ConfigMap()
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, cm)
	}
	kc, err := mesh.RemoteKubeconfig("cluster2", "https://127.0.0.1:1", nil, "token")
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs, mesh.RemoteSecret("cluster2", kc))
	clusters = Mesh(t, objs, HandWrittenEntry, RemoteSNIRule)
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	const doc = `apiVersion: v1
kind: Config
clusters:
- {name: c1, cluster: {server: "https://192.0.2.1:6443"}}
- {name: c2, cluster: {server: "https://203.0.113.7:6443"}}
users:
- {name: u, user: {token: t}}
contexts:
- {name: cluster1, context: {cluster: c1, user: u}}
- {name: cluster2, context: {cluster: c2, user: u}}
current-context: cluster1
`
	if err := os.WriteFile(kubeconfig, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return clusters, kubeconfig
}

// Factory hands out clusters by context; kubeconfig, when not "", is the
// kubeconfig it reads (for the contexts and the peers).
func Factory(clusters map[string]*cli.Cluster, kubeconfig string) cli.Factory {
	f := cli.Factory{ClusterFor: func(name string) (*cli.Cluster, error) {
		if c, ok := clusters[name]; ok {
			return c, nil
		}
		return nil, fmt.Errorf("no cluster %s", name)
	}}
	if kubeconfig != "" {
		cf := genericclioptions.NewConfigFlags(true)
		cf.KubeConfig = &kubeconfig
		f.Getter = cf
	}
	return f
}
