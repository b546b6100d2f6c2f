package plugin

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli/clitest"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
)

const (
	// The seed's hand-written entry: no DestinationRule goes with it.
	handWrittenEntry = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin-bar, namespace: foo}
spec:
  hosts: [httpbin.bar.global]
  location: MESH_INTERNAL
  resolution: DNS
  addresses: [240.0.0.2]
  ports: [{name: http1, number: 8000, protocol: http}]
  endpoints:
  - {address: 203.0.113.7, labels: {cluster: cluster2}, ports: {http1: 15443}}
`
	remoteSNIRule = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin-bar-global, namespace: foo}
spec:
  host: httpbin.bar.global
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
    portLevelSettings:
    - port: {number: 8000}
      tls: {mode: ISTIO_MUTUAL, sni: outbound_.8000_._.httpbin.bar.svc.cluster.local}
  subsets:
  - name: v2
    labels: {cluster: cluster2}
    trafficPolicy:
      portLevelSettings:
      - port: {number: 8000}
        tls: {mode: ISTIO_MUTUAL, sni: outbound_.8000_.v2_.httpbin.bar.svc.cluster.local}
`
	sourceLocalRule = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: bar}
spec:
  host: httpbin.bar.svc.cluster.local
  subsets:
  - {name: v2, labels: {version: v2}}
`
	localPassthrough = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: cross-network-gateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 15443, name: tls, protocol: TLS}
    tls: {mode: AUTO_PASSTHROUGH}
    hosts: ["*.local"]
`
)

// fakeCluster is a cluster with istio-system, an ingress gateway Service
// with a load balancer address, the given typed objects and Istio objects
// (YAML documents).
func fakeCluster(t *testing.T, name, lbIP string, kube []runtime.Object, docs ...string) *clitest.Cluster {
	t.Helper()
	return clitest.NewCluster(name, append(kube, gatewayObjects(lbIP)...)...).Load(t, docs...)
}

func httpbinService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "httpbin", Namespace: "bar"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "httpbin"}, Ports: []corev1.ServicePort{{Name: "http", Port: 8000}}},
	}
}

func TestStatusRoutes(t *testing.T) {
	tests := map[string]struct {
		caller []string
		// wantProblems are "kind object" of every problem.
		wantProblems []string
		wantText     []string // in the table
	}{
		"hand-written entry without a DestinationRule": {
			caller:       []string{handWrittenEntry},
			wantProblems: []string{mesh.ProblemRouteNowhere + " serviceentry foo/httpbin-bar"},
			wantText:     []string{"none (plain text)", "nowhere", "RoutesNowhere", "kubectl mesh export httpbin -n bar --from cluster2 --to cluster1"},
		},
		"entry with the remote SNIs": {
			caller: []string{handWrittenEntry, remoteSNIRule},
			wantText: []string{
				"CALLER", "LANDS ON", "outbound_.8000_.v2_.httpbin.bar.svc.cluster.local",
				"cluster2 203.0.113.7:15443 (istio-system/cross-network-gateway)", "bar/httpbin:8000 subset v2", "No problems found.",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clusters := clitest.Clusters{
				fakeCluster(t, "cluster1", "192.0.2.1", nil, tc.caller...),
				fakeCluster(t, "cluster2", "203.0.113.7", []runtime.Object{httpbinService()}, sourceLocalRule, localPassthrough),
			}
			run := func(args ...string) (string, error) {
				return runStatus(t, clusters, append([]string{"--contexts", "cluster1,cluster2"}, args...)...)
			}
			out, err := run("-o", "json")
			var rep mesh.Report
			if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
				t.Fatalf("status -o json: %v\n%s", jerr, out)
			}
			var got []string
			for _, p := range rep.Problems {
				got = append(got, p.Kind+" "+p.Object)
			}
			if strings.Join(got, "\n") != strings.Join(tc.wantProblems, "\n") {
				t.Errorf("problems = %q, want %q\n%s", got, tc.wantProblems, out)
			}
			if (err != nil) != (len(tc.wantProblems) > 0) {
				t.Errorf("Run() error = %v with %d problems", err, len(tc.wantProblems))
			}
			if len(rep.Routes) == 0 || rep.Routes[0].Caller != "cluster1" || rep.Routes[0].Source != "cluster2" {
				t.Errorf("routes = %+v, want cluster1's routes into cluster2", rep.Routes)
			}
			table, _ := run()
			for _, s := range tc.wantText {
				if !strings.Contains(table, s) {
					t.Errorf("table lacks %q:\n%s", s, table)
				}
			}
		})
	}
}

// runStatus runs `kubectl mesh status args…` on fake clusters.
func runStatus(t *testing.T, clusters clitest.Clusters, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := NewCmdStatus(clusters.Factory(t), genericiooptions.IOStreams{Out: &out, ErrOut: &out})
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}
