package mesh

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh/meshtest"
)

const (
	sniAll = "outbound_.8000_._.httpbin.bar.svc.cluster.local"
	sniV2  = "outbound_.8000_.v2_.httpbin.bar.svc.cluster.local"
)

// The caller's objects of a working export of httpbin.bar from cluster2.
const (
	httpbinEntry = meshtest.HTTPBinEntry
	globalRule   = meshtest.RemoteSNIRule
	// The source's objects: the local rule and the *.local passthrough.
	localRule = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: bar}
spec:
  host: httpbin
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
  subsets:
  - {name: v2, labels: {version: v2}}
`
	passthrough = meshtest.LocalPassthrough
)

// obj decodes one YAML document.
func obj(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return u
}

// view reads a cluster's mesh objects the way status does.
func view(t *testing.T, cluster string, docs ...string) RouteView {
	t.Helper()
	v := RouteView{Cluster: cluster, Services: map[string][]uint32{}}
	for _, d := range docs {
		u := obj(t, d)
		switch u.GetKind() {
		case "ServiceEntry":
			v.Entries = append(v.Entries, RouteEntryFrom(u))
		case "DestinationRule":
			v.Rules = append(v.Rules, TLSRuleFrom(u))
		case "Gateway":
			v.Gateways = append(v.Gateways, PassthroughServersFrom(u)...)
		default:
			t.Fatalf("view: unexpected kind %q", u.GetKind())
		}
	}
	return v
}

// cluster2 is the source: an ingress gateway with a load balancer and a
// node port, an east-west gateway reached only by node port, httpbin.
func cluster2(t *testing.T, docs ...string) RouteView {
	v := view(t, "cluster2", docs...)
	v.GatewayServices = []GatewayService{
		{Namespace: "istio-system", Name: "istio-ingressgateway", Addresses: []string{"203.0.113.7"}, Ports: []uint32{15443},
			NodeAddresses: []string{"192.0.2.10"}, NodePorts: []uint32{31443},
			Selector: map[string]string{"app": "istio-ingressgateway", "istio": "ingressgateway"}},
		{Namespace: "istio-system", Name: "istio-eastwestgateway", NodeAddresses: []string{"192.0.2.10"}, NodePorts: []uint32{32443},
			Selector:  map[string]string{"istio": "eastwestgateway"},
			PodLabels: []map[string]string{{"istio": "eastwestgateway", "app": "istio-eastwestgateway"}}},
	}
	v.Services["bar/httpbin"] = []uint32{8000}
	return v
}

func withEndpoint(doc, address, port string) string {
	return strings.Replace(doc, "{address: 203.0.113.7, labels: {cluster: cluster2}, ports: {http1: 15443}}",
		"{address: "+address+", labels: {cluster: cluster2}, ports: {http1: "+port+"}}", 1)
}

func TestCheckRoutes(t *testing.T) {
	seed, err := os.ReadFile(filepath.Join("..", "..", "test", "seeds", "httpbin-bar.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	type want = wantProblem
	tests := map[string]struct {
		caller RouteView
		source RouteView
		want   []want // exactly these problems
		// routes: "subset status lands-on" of each row, in order.
		routes []string
		check  func(t *testing.T, routes []Route)
	}{
		"export's objects route": {
			caller: view(t, "cluster1", httpbinEntry, globalRule),
			source: cluster2(t, localRule, passthrough),
			routes: []string{" OK " + sniAll, "v2 OK " + sniV2},
			check: func(t *testing.T, routes []Route) {
				r := routes[0]
				if r.SNI != sniAll || r.GatewayService != "istio-system/istio-ingressgateway" || r.Gateway != "istio-system/cross-network-gateway" ||
					r.Service != "bar/httpbin:8000" || r.Endpoint != "203.0.113.7:15443" || r.Source != "cluster2" || r.Entry != "foo/httpbin-bar" {
					t.Errorf("route = %+v", r)
				}
			},
		},
		"seed entry without a DestinationRule sends plain text": {
			caller: view(t, "cluster1", string(seed)),
			source: cluster2(t, localRule, passthrough),
			want: []want{{ProblemRouteNowhere, "serviceentry foo/httpbin-bar", []string{
				"httpbin.bar.global", "plain text", "kubectl mesh export httpbin -n bar --from cluster2 --to cluster1", sniAll}}},
			routes: []string{" RoutesNowhere "},
		},
		"ISTIO_MUTUAL without sni sends the default SNI": {
			caller: view(t, "cluster1", httpbinEntry, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin-bar-global, namespace: foo}
spec:
  host: httpbin.bar.global
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
`),
			source: cluster2(t, localRule, passthrough),
			want: []want{{ProblemRouteNowhere, "destinationrule foo/httpbin-bar-global", []string{
				"port 8000", "spec.trafficPolicy.tls", "outbound_.8000_._.httpbin.bar.global",
				"add {port: {number: 8000}, tls: {mode: ISTIO_MUTUAL, sni: " + sniAll + "}} to spec.trafficPolicy.portLevelSettings"}}},
			routes: []string{" RoutesNowhere "},
			check: func(t *testing.T, routes []Route) {
				if routes[0].SNI != "outbound_.8000_._.httpbin.bar.global" {
					t.Errorf("SNI = %q, want pilot's default", routes[0].SNI)
				}
			},
		},
		"port-level tls without sni replaces the top-level sni": {
			caller: view(t, "cluster1", httpbinEntry, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin-bar-global, namespace: foo}
spec:
  host: httpbin.bar.global
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL, sni: `+sniAll+`}
    portLevelSettings:
    - port: {number: 8000}
      tls: {mode: ISTIO_MUTUAL}
`),
			source: cluster2(t, localRule, passthrough),
			want: []want{{ProblemRouteNowhere, "destinationrule foo/httpbin-bar-global", []string{
				"spec.trafficPolicy.portLevelSettings[0].tls sets ISTIO_MUTUAL without sni",
				"set spec.trafficPolicy.portLevelSettings[0].tls of destinationrule foo/httpbin-bar-global to {mode: ISTIO_MUTUAL, sni: " + sniAll + "}"}}},
			routes: []string{" RoutesNowhere "},
		},
		"port-level entry without tls clears the top-level tls": {
			caller: view(t, "cluster1", httpbinEntry, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin-bar-global, namespace: foo}
spec:
  host: httpbin.bar.global
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL, sni: `+sniAll+`}
    portLevelSettings:
    - port: {number: 8000}
      connectionPool: {tcp: {maxConnections: 10}}
`),
			source: cluster2(t, localRule, passthrough),
			want: []want{{ProblemRouteNowhere, "destinationrule foo/httpbin-bar-global", []string{
				"spec.trafficPolicy.portLevelSettings[0] has no tls", "do not inherit", "plain text"}}},
			routes: []string{" RoutesNowhere "},
		},
		"explicit .global SNI": {
			caller: view(t, "cluster1", httpbinEntry, strings.Replace(globalRule, "sni: "+sniAll, "sni: outbound_.8000_._.httpbin.bar.global", 1)),
			source: cluster2(t, localRule, passthrough),
			want: []want{{ProblemRouteNowhere, "destinationrule foo/httpbin-bar-global", []string{
				"spec.trafficPolicy.portLevelSettings[0].tls.sni is outbound_.8000_._.httpbin.bar.global", "whose host is the .global one",
				"set spec.trafficPolicy.portLevelSettings[0].tls of destinationrule foo/httpbin-bar-global to {mode: ISTIO_MUTUAL, sni: " + sniAll + "}"}}},
			routes: []string{" RoutesNowhere ", "v2 OK " + sniV2},
		},
		"tls mode SIMPLE": {
			caller: view(t, "cluster1", httpbinEntry, strings.Replace(globalRule, "{mode: ISTIO_MUTUAL, sni: "+sniAll+"}", "{mode: SIMPLE, sni: "+sniAll+"}", 1)),
			source: cluster2(t, localRule, passthrough),
			want: []want{{ProblemRouteNowhere, "destinationrule foo/httpbin-bar-global", []string{
				`spec.trafficPolicy.portLevelSettings[0].tls.mode is "SIMPLE"`}}},
			routes: []string{" RoutesNowhere ", "v2 OK " + sniV2},
		},
		"tls mode DISABLE on a subset": {
			caller: view(t, "cluster1", httpbinEntry, strings.Replace(globalRule, "{mode: ISTIO_MUTUAL, sni: "+sniV2+"}", "{mode: DISABLE}", 1)),
			source: cluster2(t, localRule, passthrough),
			want: []want{{ProblemRouteNowhere, "destinationrule foo/httpbin-bar-global", []string{
				"port 8000, subset v2", `spec.subsets[0].trafficPolicy.portLevelSettings[0].tls.mode is "DISABLE"`, "plain text",
				"set spec.subsets[0].trafficPolicy.portLevelSettings[0].tls of destinationrule foo/httpbin-bar-global to {mode: ISTIO_MUTUAL, sni: " + sniV2 + "}"}}},
			routes: []string{" OK " + sniAll, "v2 RoutesNowhere "},
		},
		"the entry's namespace's rule wins over another namespace's": {
			caller: view(t, "cluster1", httpbinEntry, globalRule, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: elsewhere, namespace: baz}
spec:
  host: httpbin.bar.global
`),
			source: cluster2(t, localRule, passthrough),
			routes: []string{" OK " + sniAll, "v2 OK " + sniV2},
		},
		"a wildcard rule without SNIs": {
			caller: view(t, "cluster1", httpbinEntry, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: all-global, namespace: istio-system}
spec:
  host: "*.global"
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
`),
			source: cluster2(t, localRule, passthrough),
			want:   []want{{ProblemRouteNowhere, "destinationrule istio-system/all-global", []string{"outbound_.8000_._.httpbin.bar.global"}}},
			routes: []string{" RoutesNowhere "},
		},
		"subset inheriting the whole-service SNI lands on every pod": {
			caller: view(t, "cluster1", httpbinEntry, strings.Replace(globalRule, `    trafficPolicy:
      portLevelSettings:
      - port: {number: 8000}
        tls: {mode: ISTIO_MUTUAL, sni: `+sniV2+`}
`, "", 1)),
			source: cluster2(t, localRule, passthrough),
			want: []want{{ProblemSNIMismatch, "destinationrule foo/httpbin-bar-global", []string{
				"port 8000, subset v2", "subset v2 of port 8000 of httpbin.bar.svc.cluster.local",
				"add {port: {number: 8000}, tls: {mode: ISTIO_MUTUAL, sni: " + sniV2 + "}} to spec.subsets[0].trafficPolicy.portLevelSettings"}}},
			routes: []string{" OK " + sniAll, "v2 SNIMismatch " + sniAll},
		},
		"subset missing from the source's local rule": {
			caller: view(t, "cluster1", httpbinEntry, globalRule),
			source: cluster2(t, strings.Replace(localRule, "{name: v2, labels: {version: v2}}", "{name: v1, labels: {version: v1}}", 1), passthrough),
			want: []want{{ProblemRemoteSubset, "destinationrule bar/httpbin", []string{
				"subset v2", sniV2, "defines only v1", "kubectl mesh export httpbin -n bar --from cluster2 --to cluster1"}}},
			routes: []string{" OK " + sniAll, "v2 RemoteSubsetMissing "},
		},
		"no local rule in the source": {
			caller: view(t, "cluster1", httpbinEntry, globalRule),
			source: cluster2(t, passthrough),
			want: []want{{ProblemRemoteSubset, "service bar/httpbin", []string{
				"no DestinationRule of cluster2 for httpbin.bar.svc.cluster.local defines subset v2"}}},
			routes: []string{" OK " + sniAll, "v2 RemoteSubsetMissing "},
		},
		"passthrough for *.global only": {
			caller: view(t, "cluster1", httpbinEntry, globalRule),
			source: cluster2(t, localRule, strings.Replace(passthrough, `"*.local"`, `"*.global"`, 1)),
			want: []want{{ProblemNoPassthrough, "gateway istio-system/cross-network-gateway", []string{
				"*.global", "httpbin.bar.svc.cluster.local", "kubectl mesh link --from cluster1 --to cluster2"}}},
			routes: []string{" NoPassthroughGateway ", "v2 NoPassthroughGateway "},
		},
		"passthrough on the east-west pods, endpoint at the ingress gateway": {
			caller: view(t, "cluster1", httpbinEntry, globalRule),
			source: cluster2(t, localRule, strings.Replace(passthrough, "istio: ingressgateway", "istio: eastwestgateway", 1)),
			want: []want{{ProblemNoPassthrough, "service istio-system/istio-ingressgateway", []string{
				"selects the pods of Service istio-system/istio-ingressgateway", "gateway istio-system/cross-network-gateway selects {istio: eastwestgateway}",
				"kubectl mesh link --from cluster1 --to cluster2"}}},
			routes: []string{" NoPassthroughGateway ", "v2 NoPassthroughGateway "},
		},
		"node port of the ingress gateway": {
			caller: view(t, "cluster1", withEndpoint(httpbinEntry, "192.0.2.10", "31443"), globalRule),
			source: cluster2(t, localRule, passthrough),
			routes: []string{" OK " + sniAll, "v2 OK " + sniV2},
			check: func(t *testing.T, routes []Route) {
				if r := routes[0]; r.GatewayService != "istio-system/istio-ingressgateway" || r.Endpoint != "192.0.2.10:31443" {
					t.Errorf("route = %+v, want the ingress gateway behind node port 31443", r)
				}
			},
		},
		"node port of the east-west gateway, which no passthrough selects": {
			caller: view(t, "cluster1", withEndpoint(httpbinEntry, "192.0.2.10", "32443"), globalRule),
			source: cluster2(t, localRule, passthrough),
			want: []want{{ProblemNoPassthrough, "service istio-system/istio-eastwestgateway", []string{
				"{app: istio-eastwestgateway, istio: eastwestgateway}", "--gateway-service istio-eastwestgateway --gateway-namespace istio-system"}}},
			routes: []string{" NoPassthroughGateway ", "v2 NoPassthroughGateway "},
		},
		"endpoint at no gateway of the source": {
			caller: view(t, "cluster1", withEndpoint(httpbinEntry, "198.51.100.1", "15443"), globalRule),
			source: cluster2(t, localRule, passthrough),
			want: []want{{ProblemNotAGateway, "serviceentry foo/httpbin-bar", []string{
				"spec.endpoints[0]", "198.51.100.1:15443", "kubectl mesh export httpbin -n bar --from cluster2 --to cluster1"}}},
			routes: []string{" EndpointNotAGateway ", "v2 EndpointNotAGateway "},
		},
		"Service missing in the source": {
			caller: view(t, "cluster1", httpbinEntry, globalRule),
			source: func() RouteView {
				v := cluster2(t, localRule, passthrough)
				delete(v.Services, "bar/httpbin")
				return v
			}(),
			want: []want{{ProblemRemoteService, "serviceentry foo/httpbin-bar", []string{
				"Service bar/httpbin in cluster2, which does not exist", sniAll}}, {ProblemRemoteService, "serviceentry foo/httpbin-bar", []string{sniV2}}},
			routes: []string{" RemoteServiceMissing ", "v2 RemoteServiceMissing "},
		},
		"port missing in the source": {
			caller: view(t, "cluster1", httpbinEntry, globalRule),
			source: func() RouteView {
				v := cluster2(t, localRule, passthrough)
				v.Services["bar/httpbin"] = []uint32{80}
				return v
			}(),
			want: []want{{ProblemRemoteService, "serviceentry foo/httpbin-bar", []string{
				"names port 8000, but Service bar/httpbin in cluster2 has ports 80", sniAll}}, {ProblemRemoteService, "serviceentry foo/httpbin-bar", []string{sniV2}}},
			routes: []string{" RemoteServiceMissing ", "v2 RemoteServiceMissing "},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			routes, problems := CheckRoutes(tc.caller, map[string]RouteView{"cluster1": tc.caller, "cluster2": tc.source})
			if len(problems) != len(tc.want) {
				t.Errorf("got %d problems, want %d:\n%s", len(problems), len(tc.want), problemList(problems))
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(problems, w.matches) {
					t.Errorf("no %s problem on %s mentioning %q; got:\n%s", w.kind, w.object, w.text, problemList(problems))
				}
			}
			var got []string
			for _, r := range routes {
				got = append(got, r.Subset+" "+r.Status+" "+r.LandsOn)
			}
			if !slices.Equal(got, tc.routes) {
				t.Errorf("routes = %q, want %q", got, tc.routes)
			}
			if tc.check != nil && len(routes) > 0 {
				tc.check(t, routes)
			}
		})
	}
}

// wantProblem is a problem a test expects: its kind, object, and texts
// found in its message or fix.
type wantProblem struct {
	kind, object string
	text         []string
}

func (w wantProblem) matches(p Problem) bool {
	if p.Kind != w.kind || p.Object != w.object || p.Fix == "" {
		return false
	}
	for _, s := range w.text {
		if !strings.Contains(p.Message+" fix: "+p.Fix, s) {
			return false
		}
	}
	return true
}

func problemList(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("  " + p.Cluster + ": " + p.Object + " [" + p.Kind + "]: " + p.Message + "\n    fix: " + p.Fix + "\n")
	}
	return b.String()
}

func TestCheckRoutesUnreportedSource(t *testing.T) {
	caller := view(t, "cluster1", httpbinEntry, globalRule)
	routes, problems := CheckRoutes(caller, map[string]RouteView{"cluster1": caller})
	if len(problems) != 0 {
		t.Errorf("a source that is not reported gives problems:\n%s", problemList(problems))
	}
	if len(routes) != 2 || routes[0].Status != RouteUnchecked || routes[0].SNI != sniAll || routes[1].SNI != sniV2 {
		t.Errorf("routes = %+v, want two Unchecked rows with the SNIs", routes)
	}
	// The caller's own mistakes are reported all the same.
	caller = view(t, "cluster1", httpbinEntry)
	routes, problems = CheckRoutes(caller, nil)
	if len(problems) != 1 || problems[0].Kind != ProblemRouteNowhere || len(routes) != 1 || routes[0].Status != ProblemRouteNowhere {
		t.Errorf("plain text to an unreported source: routes %+v, problems:\n%s", routes, problemList(problems))
	}
}

// An endpoint away from the discovered gateway is CheckGateways' problem:
// the route shows it, CheckRoutes does not report it twice.
func TestCheckRoutesLeavesGatewayMismatch(t *testing.T) {
	caller := view(t, "cluster1", withEndpoint(httpbinEntry, "198.51.100.1", "15443"), globalRule)
	source := cluster2(t, localRule, passthrough)
	source.Gateway = &GatewayAddress{Host: "203.0.113.7", Port: 15443}
	routes, problems := CheckRoutes(caller, map[string]RouteView{"cluster2": source})
	if len(problems) != 0 || len(routes) != 2 || routes[0].Status != ProblemGatewayMismatch {
		t.Errorf("routes %+v, problems:\n%s", routes, problemList(problems))
	}
}

// The helloworld seed sets ISTIO_MUTUAL without SNIs: the whole service and
// both subsets land nowhere, each reported with its own fix.
func TestCheckRoutesHelloworldSeed(t *testing.T) {
	seed, err := os.ReadFile(filepath.Join("..", "..", "test", "seeds", "helloworld-hello.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	caller := view(t, "cluster1", strings.Split(string(seed), "\n---\n")...)
	_, problems := CheckRoutes(caller, nil)
	var got []string
	for _, p := range problems {
		if p.Kind != ProblemRouteNowhere || p.Object != "destinationrule hello/helloworld-hello-global" {
			t.Errorf("unexpected problem %+v", p)
		}
		got = append(got, p.Fix[:strings.Index(p.Fix, "}}")+2])
	}
	want := []string{
		"add {port: {number: 5000}, tls: {mode: ISTIO_MUTUAL, sni: outbound_.5000_._.helloworld.hello.svc.cluster.local}}",
		"add {port: {number: 5000}, tls: {mode: ISTIO_MUTUAL, sni: outbound_.5000_.v2_.helloworld.hello.svc.cluster.local}}",
		"add {port: {number: 5000}, tls: {mode: ISTIO_MUTUAL, sni: outbound_.5000_.v3_.helloworld.hello.svc.cluster.local}}",
	}
	if !slices.Equal(got, want) {
		t.Errorf("fixes = %q\nwant %q", got, want)
	}
}

func TestTLSFor(t *testing.T) {
	rule := TLSRuleFrom(obj(t, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r, namespace: foo}
spec:
  host: httpbin.bar.global
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL, sni: top}
    portLevelSettings:
    - port: {number: 8000}
      tls: {mode: ISTIO_MUTUAL, sni: port8000}
    - port: {number: 9000}
      loadBalancer: {simple: ROUND_ROBIN}
  subsets:
  - name: bare
  - name: own
    trafficPolicy:
      tls: {mode: ISTIO_MUTUAL, sni: own}
  - name: ownport
    trafficPolicy:
      tls: {mode: ISTIO_MUTUAL, sni: own}
      portLevelSettings:
      - port: {number: 8000}
        tls: {mode: ISTIO_MUTUAL, sni: ownport8000}
  - name: cleared
    trafficPolicy:
      portLevelSettings:
      - port: {number: 8000}
        connectionPool: {tcp: {maxConnections: 1}}
`))
	tests := map[string]struct {
		port     uint32
		subset   string
		sni      string // "-" for no tls
		from     string
		wantNone bool
	}{
		"top level":                       {port: 7000, sni: "top", from: "spec.trafficPolicy.tls"},
		"port level replaces":             {port: 8000, sni: "port8000", from: "spec.trafficPolicy.portLevelSettings[0].tls"},
		"port level without tls clears":   {port: 9000, sni: "-", from: "spec.trafficPolicy.portLevelSettings[1]"},
		"bare subset keeps the port's":    {port: 8000, subset: "bare", sni: "port8000", from: "spec.trafficPolicy.portLevelSettings[0].tls"},
		"subset tls replaces the port's":  {port: 8000, subset: "own", sni: "own", from: "spec.subsets[1].trafficPolicy.tls"},
		"subset port level replaces":      {port: 8000, subset: "ownport", sni: "ownport8000", from: "spec.subsets[2].trafficPolicy.portLevelSettings[0].tls"},
		"subset port level on other port": {port: 7000, subset: "ownport", sni: "own", from: "spec.subsets[2].trafficPolicy.tls"},
		"subset port level clears":        {port: 8000, subset: "cleared", sni: "-", from: "spec.subsets[3].trafficPolicy.portLevelSettings[0]"},
		"unknown subset is the rule's":    {port: 8000, subset: "nope", sni: "port8000", from: "spec.trafficPolicy.portLevelSettings[0].tls"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			eff := rule.TLSFor(tc.port, tc.subset)
			sni := "-"
			if eff.TLS != nil {
				sni = eff.TLS.SNI
			}
			if sni != tc.sni || eff.From != tc.from {
				t.Errorf("TLSFor(%d, %q) = sni %q from %q, want %q from %q", tc.port, tc.subset, sni, eff.From, tc.sni, tc.from)
			}
		})
	}
}
