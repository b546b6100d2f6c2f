package status

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/status/statustest"
)

var both = []string{"cluster1", "cluster2"}

// gather reports on cluster1 and cluster2 of clusters.
func gather(t *testing.T, clusters map[string]*cli.Cluster, kubeconfig string) *mesh.Report {
	t.Helper()
	rep, err := Gather(t.Context(), statustest.Factory(clusters, kubeconfig), Request{Contexts: both, Explicit: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("Gather(%v) = %v", both, err)
	}
	return rep
}

// The table and -o json are what they were before status was split into
// fetch, check and print (testdata holds the output of that version on
// the same clusters).
func TestGolden(t *testing.T) {
	clusters, kubeconfig := statustest.RichMesh(t)
	rep := gather(t, clusters, kubeconfig)
	table := func(out *bytes.Buffer) error { return PrintTable(out, rep) }
	asJSON := func(out *bytes.Buffer) error {
		pf := cli.NewReportPrintFlags()
		*pf.OutputFormat = "json"
		return pf.PrintReport(out, rep, nil)
	}
	for golden, print := range map[string]func(*bytes.Buffer) error{"status-table.golden": table, "status.json.golden": asJSON} {
		want, err := os.ReadFile(filepath.Join("testdata", golden))
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := print(&got); err != nil {
			t.Fatal(err)
		}
		if got.String() != string(want) {
			t.Errorf("report differs from testdata/%s:\n%s\nwant:\n%s", golden, got.String(), want)
		}
	}
	var kinds []string
	for _, p := range rep.Problems {
		kinds = append(kinds, p.Kind)
	}
	if got := strings.Join(kinds, " "); got != "LinkIncomplete PeerUnreachable RemoteServerUnreachable" {
		t.Errorf("problems = %q", got)
	}
}

func TestGatherContexts(t *testing.T) {
	clusters, kubeconfig := statustest.RichMesh(t)
	tests := map[string]struct {
		req  Request
		want string // the error; "" means a report of cluster1
	}{
		"named and unreachable": {req: Request{Contexts: []string{"cluster1", "cluster3"}, Explicit: true}, want: "no cluster cluster3"},
		"default set skips":     {req: Request{Contexts: []string{"cluster1", "cluster3"}}},
		"default set, no mesh":  {req: Request{Contexts: []string{"cluster3"}}, want: ErrNoCluster.Error()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.req.Timeout = time.Second
			rep, err := Gather(t.Context(), statustest.Factory(clusters, kubeconfig), tc.req)
			if tc.want != "" {
				if err == nil || err.Error() != tc.want {
					t.Fatalf("Gather(%+v) = %v, want %q", tc.req, err, tc.want)
				}
				if tc.want == ErrNoCluster.Error() && !errors.Is(err, ErrNoCluster) {
					t.Errorf("Gather(%+v) = %v, not ErrNoCluster", tc.req, err)
				}
				return
			}
			if err != nil || len(rep.Clusters) != 1 || rep.Clusters[0].Context != "cluster1" {
				t.Fatalf("Gather(%+v) = %+v, %v; want cluster1 alone", tc.req, rep, err)
			}
		})
	}
}

func TestGatherRoutes(t *testing.T) {
	tests := map[string]struct {
		caller []string
		// wantProblems are "kind object" of every problem.
		wantProblems []string
		wantText     []string // in the table
	}{
		"hand-written entry without a DestinationRule": {
			caller:       []string{statustest.HandWrittenEntry},
			wantProblems: []string{mesh.ProblemRouteNowhere + " serviceentry foo/httpbin-bar"},
			wantText:     []string{"none (plain text)", "nowhere", "RoutesNowhere", "kubectl mesh export httpbin -n bar --from cluster2 --to cluster1"},
		},
		"entry with the remote SNIs": {
			caller: []string{statustest.HandWrittenEntry, statustest.RemoteSNIRule},
			wantText: []string{
				"CALLER", "LANDS ON", "outbound_.8000_.v2_.httpbin.bar.svc.cluster.local",
				"cluster2 203.0.113.7:15443 (istio-system/cross-network-gateway)", "bar/httpbin:8000 subset v2", "No problems found.",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rep := gather(t, statustest.Mesh(t, nil, tc.caller...), "")
			var got []string
			for _, p := range rep.Problems {
				got = append(got, p.Kind+" "+p.Object)
			}
			js, _ := json.MarshalIndent(rep, "", "  ")
			if strings.Join(got, "\n") != strings.Join(tc.wantProblems, "\n") {
				t.Errorf("problems = %q, want %q\n%s", got, tc.wantProblems, js)
			}
			if len(rep.Routes) == 0 || rep.Routes[0].Caller != "cluster1" || rep.Routes[0].Source != "cluster2" {
				t.Errorf("routes = %+v, want cluster1's routes into cluster2", rep.Routes)
			}
			var table bytes.Buffer
			if err := PrintTable(&table, rep); err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.wantText {
				if !strings.Contains(table.String(), s) {
					t.Errorf("table lacks %q:\n%s", s, table.String())
				}
			}
		})
	}
}

func TestWebhookState(t *testing.T) {
	meta := metav1.ObjectMeta{Name: webhookName}
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: meta}
	validating := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: meta}
	slice := func(ready bool) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: webhookName + "-1", Namespace: rules.MeshNamespace, Labels: map[string]string{discoveryv1.LabelServiceName: webhookName}},
			Endpoints:  []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		}
	}
	tests := map[string]struct {
		objs []runtime.Object
		want string
	}{
		"none":               {want: "not installed"},
		"validating alone":   {objs: []runtime.Object{validating}, want: "incomplete: missing configuration"},
		"no endpoints":       {objs: []runtime.Object{mutating, validating}, want: "installed, no ready endpoints"},
		"endpoint not ready": {objs: []runtime.Object{mutating, validating, slice(false)}, want: "installed, no ready endpoints"},
		"serving":            {objs: []runtime.Object{mutating, validating, slice(true)}, want: "installed, serving"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := &cli.Cluster{Context: "c", Kube: fake.NewClientset(tc.objs...)}
			if got := webhookState(t.Context(), c); got != tc.want {
				t.Errorf("webhookState(%d objects) = %q, want %q", len(tc.objs), got, tc.want)
			}
		})
	}
}

// The pods behind a gateway Service are those its selector matches and
// that are not being deleted; node ports come with the nodes' addresses.
func TestGatewayService(t *testing.T) {
	svc := statustest.Cluster(t, "c", "192.0.2.1", nil)
	list, err := svc.Kube.CoreV1().Services(rules.IstioSystemNamespace).List(t.Context(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("gateway Service: %v, %d", err, len(list.Items))
	}
	gone := metav1.Now()
	pods := []corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "gw", Labels: map[string]string{"istio": "ingressgateway", "v": "1"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "old", Labels: map[string]string{"istio": "ingressgateway", "v": "0"}, DeletionTimestamp: &gone}},
		{ObjectMeta: metav1.ObjectMeta{Name: "other", Labels: map[string]string{"app": "x"}}},
	}
	g := gatewayService(&list.Items[0], pods, []string{"10.1.1.1"})
	if len(g.PodLabels) != 1 || g.PodLabels[0]["v"] != "1" {
		t.Errorf("PodLabels = %v, want the labels of pod gw alone", g.PodLabels)
	}
	if strings.Join(g.Addresses, ",") != "192.0.2.1" || len(g.Ports) != 1 || g.Ports[0] != 15443 || len(g.NodePorts) != 1 || g.NodePorts[0] != 31443 {
		t.Errorf("gatewayService = %+v, want 192.0.2.1, port 15443, node port 31443", g)
	}
	if strings.Join(g.NodeAddresses, ",") != "10.1.1.1" {
		t.Errorf("NodeAddresses = %v, want the nodes' addresses with a node port", g.NodeAddresses)
	}
}

// Every client the engine builds has the request's timeout, the remote
// secrets' too: a server that accepts and never answers must not hang
// status.
func TestGatherTimeout(t *testing.T) {
	clusters, kubeconfig := statustest.RichMesh(t)
	f := statustest.Factory(clusters, kubeconfig)
	var seen []time.Duration
	f.WrapConfig = func(cfg *rest.Config) { seen = append(seen, cfg.Timeout) }
	if _, err := Gather(t.Context(), f, Request{Contexts: both, Explicit: true, Timeout: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0] != 3*time.Second {
		t.Errorf("timeouts of the remote secret's clients = %v, want [3s]", seen)
	}
}
