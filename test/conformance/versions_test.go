package conformance

// The seed walkthrough's version routing (issue 11, DESIGN.md §1.5):
// helloworld v1 runs in cluster1, v2 and v3 in cluster2; in cluster1, the
// requests of user jason go 70 % to the .global subset v2 and 30 % to v3,
// all others to the local subset v1. `kubectl mesh route` writes it; pilot
// must turn it into the caller's HTTP route for port 5000, with clusters
// that exist, have endpoints and land where the versions run.

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"istio.io/istio/pilot/pkg/model"
)

// seedRouteArgs is the seed's version routing, run in setup after the
// exports.
var seedRouteArgs = []string{"route", "helloworld", "-n", "hello", "--context", callerCluster,
	"--when", "header:end-user=jason", "--to", "v2=70,v3=30", "--otherwise", "v1"}

const (
	seedRouteName = "5000" // the sidecar's RDS route configuration for port 5000
	seedGlobal    = "helloworld.hello.global"
	seedLocal     = "helloworld.hello.svc.cluster.local"
)

// wantSeedRoutes are the routes, in order, of the virtual hosts of both
// helloworld hosts in route configuration "5000", as describeRoute writes
// them. Written out, not derived from the VirtualService.
var wantSeedRoutes = []string{
	`prefix / header end-user exact "jason" → outbound|5000|v2|helloworld.hello.global 70, outbound|5000|v3|helloworld.hello.global 30`,
	`prefix / → outbound|5000|v1|helloworld.hello.svc.cluster.local`,
}

// wantSeedLanding is, per cluster of those routes, the lab cluster and pods
// a request lands on: the local v1 pod, and for the .global subsets the
// pods behind cluster2's gateway that followRoutes reaches.
var wantSeedLanding = map[string]map[string][]string{
	"outbound|5000|v1|helloworld.hello.svc.cluster.local": {"cluster1": {"helloworld-v1"}},
	"outbound|5000|v2|helloworld.hello.global":            {"cluster2": {"helloworld-v2"}},
	"outbound|5000|v3|helloworld.hello.global":            {"cluster2": {"helloworld-v3"}},
}

// checkVersionRouting checks the seed's routing for a sidecar of the
// caller in namespace ns: the routes of both hosts' virtual hosts, then
// every cluster of wantSeedLanding in the sidecar's CDS, with endpoints,
// landing on the wanted pods — for a .global cluster through followRoutes
// (caller's SNI and mTLS, the source gateway's chain, the pods behind it),
// for a local one through its EDS endpoints. It returns what differs and a
// summary of what pilot generated.
func checkVersionRouting(caller *pilot, sources map[string]*pilot, ns string) (problems []string, summary string) {
	var sum strings.Builder
	pod := caller.sidecarPod(ns)
	if pod == nil {
		return []string{fmt.Sprintf("%s: no pod with a sidecar in namespace %s to call from", caller.name, ns)}, ""
	}
	proxy := caller.proxyOf(pod, model.SidecarProxy)
	at := fmt.Sprintf("%s: sidecar %s/%s", caller.name, pod.Namespace, pod.Name)

	var rc *routev3.RouteConfiguration
	for _, r := range caller.s.Routes(proxy) {
		if r.GetName() == seedRouteName {
			rc = r
		}
	}
	if rc == nil {
		return []string{fmt.Sprintf("%s: no route configuration %q", at, seedRouteName)}, ""
	}
	for _, host := range []string{seedGlobal, seedLocal} {
		vh := virtualHostFor(rc, host)
		if vh == nil {
			problems = append(problems, fmt.Sprintf("%s: route %q has no virtual host for %s; virtual hosts %v", at, seedRouteName, host, virtualHostNames(rc)))
			continue
		}
		got := make([]string, 0, len(vh.GetRoutes()))
		for _, r := range vh.GetRoutes() {
			got = append(got, describeRoute(r))
		}
		fmt.Fprintf(&sum, "\n  route %q virtual host %s:%s", seedRouteName, vh.GetName(), indentLines(got))
		if !slices.Equal(got, wantSeedRoutes) {
			problems = append(problems, fmt.Sprintf("%s: route %q, virtual host %s (for %s): want routes%s\npilot generated%s",
				at, seedRouteName, vh.GetName(), host, indentLines(wantSeedRoutes), indentLines(got)))
		}
	}

	failures, hops := followRoutes(caller, sources)
	clusters := caller.s.Clusters(proxy)
	for _, cname := range slices.Sorted(maps.Keys(wantSeedLanding)) {
		r, ok := parseOutbound(cname)
		if !ok {
			problems = append(problems, "not an outbound cluster name: "+cname)
			continue
		}
		cl := clusterByName(clusters, cname)
		if cl == nil {
			problems = append(problems, fmt.Sprintf("%s: no cluster %s in CDS", at, cname))
			continue
		}
		eps := clusterEndpoints(caller.s, proxy, cl)
		if len(eps) == 0 {
			problems = append(problems, fmt.Sprintf("%s: cluster %s (%s) has no endpoints", at, cname, cl.GetType()))
			continue
		}
		got := map[string][]string{}
		if strings.HasSuffix(r.host, ".global") {
			for _, f := range failures {
				if f.route == r {
					problems = append(problems, f.String())
				}
			}
			for _, h := range hops {
				if h.route == r {
					got[h.source] = append(got[h.source], h.pods...)
				}
			}
		} else {
			name, rest, _ := strings.Cut(r.host, ".")
			ns, _, _ := strings.Cut(rest, ".")
			want, missing := caller.landing(name, ns, r.port, r.subset)
			if missing != "" || !slices.Equal(eps, want) {
				problems = append(problems, fmt.Sprintf("%s: cluster %s: want endpoints %v (%s); pilot generated %v", at, cname, want, missing, eps))
			}
			for _, ep := range eps {
				ip, _, _ := net.SplitHostPort(ep)
				got[caller.name] = append(got[caller.name], caller.podNameByIP(ip))
			}
		}
		fmt.Fprintf(&sum, "\n  %s (%s, endpoints %v) lands on %v", cname, cl.GetType(), eps, got)
		if !maps.EqualFunc(got, wantSeedLanding[cname], slices.Equal) {
			problems = append(problems, fmt.Sprintf("%s: cluster %s lands on %v, want %v", at, cname, got, wantSeedLanding[cname]))
		}
	}
	return problems, sum.String()
}

// parseOutbound reads outbound|PORT|SUBSET|HOST.
func parseOutbound(name string) (route, bool) {
	parts := strings.Split(name, "|")
	if len(parts) != 4 || parts[0] != "outbound" {
		return route{}, false
	}
	port, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil {
		return route{}, false
	}
	return route{host: parts[3], port: uint32(port), subset: parts[2]}, true
}

// virtualHostFor is the virtual host of rc whose domains include host.
func virtualHostFor(rc *routev3.RouteConfiguration, host string) *routev3.VirtualHost {
	for _, vh := range rc.GetVirtualHosts() {
		if slices.Contains(vh.GetDomains(), host) {
			return vh
		}
	}
	return nil
}

func virtualHostNames(rc *routev3.RouteConfiguration) []string {
	var out []string
	for _, vh := range rc.GetVirtualHosts() {
		out = append(out, vh.GetName())
	}
	return out
}

// describeRoute writes an Envoy route as one line: its path and header
// matches, then its destination clusters with their weights.
func describeRoute(r *routev3.Route) string {
	var parts []string
	m := r.GetMatch()
	switch {
	case m.GetPrefix() != "":
		parts = append(parts, "prefix "+m.GetPrefix())
	case m.GetPath() != "":
		parts = append(parts, "path "+m.GetPath())
	case m.GetPathSeparatedPrefix() != "":
		parts = append(parts, "path-prefix "+m.GetPathSeparatedPrefix())
	case m.GetSafeRegex() != nil:
		parts = append(parts, "path-regex "+strconv.Quote(m.GetSafeRegex().GetRegex()))
	}
	for _, h := range m.GetHeaders() {
		parts = append(parts, "header "+h.GetName()+" "+describeHeaderMatch(h))
	}
	a := r.GetRoute()
	var dest string
	switch {
	case a == nil:
		dest = fmt.Sprintf("(no route action: %T)", r.GetAction())
	case a.GetCluster() != "":
		dest = a.GetCluster()
	case a.GetWeightedClusters() != nil:
		var ws []string
		for _, c := range a.GetWeightedClusters().GetClusters() {
			ws = append(ws, fmt.Sprintf("%s %d", c.GetName(), c.GetWeight().GetValue()))
		}
		dest = strings.Join(ws, ", ")
	default:
		dest = fmt.Sprintf("(cluster specifier %T)", a.GetClusterSpecifier())
	}
	return strings.Join(parts, " ") + " → " + dest
}

func describeHeaderMatch(h *routev3.HeaderMatcher) string {
	not := ""
	if h.GetInvertMatch() {
		not = "not "
	}
	sm := h.GetStringMatch()
	switch {
	case sm == nil && h.GetPresentMatch():
		return not + "present"
	case sm == nil:
		return not + fmt.Sprintf("(%T)", h.GetHeaderMatchSpecifier())
	}
	switch p := sm.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return not + "exact " + strconv.Quote(p.Exact)
	case *matcherv3.StringMatcher_Prefix:
		return not + "prefix " + strconv.Quote(p.Prefix)
	case *matcherv3.StringMatcher_SafeRegex:
		return not + "regex " + strconv.Quote(p.SafeRegex.GetRegex())
	default:
		return not + fmt.Sprintf("(%T)", p)
	}
}

func indentLines(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("\n    " + l)
	}
	return b.String()
}

// TestVersionRouting: the seed's jason 70/30 routing, as cluster1's pilot
// gives it to a sidecar in the service's namespace and in another one.
func TestVersionRouting(t *testing.T) {
	sc := needScenario(t)
	pilots := newPilots(t, sc)
	for _, ns := range []string{"hello", "foo"} {
		t.Run("caller in "+ns, func(t *testing.T) {
			problems, summary := checkVersionRouting(pilots[callerCluster], sourcesOf(pilots), ns)
			for _, p := range problems {
				t.Error(p)
			}
			t.Logf("pilot generated:%s", summary)
		})
	}
}

// TestVersionRoutingCanFail breaks the written routing in a copy of the
// caller and checks that checkVersionRouting says what broke.
func TestVersionRoutingCanFail(t *testing.T) {
	sc := needScenario(t)
	pilots := newPilots(t, sc)
	if problems, _ := checkVersionRouting(pilots[callerCluster], sourcesOf(pilots), "hello"); len(problems) > 0 {
		t.Fatalf("the unbroken scenario must route (see TestVersionRouting): %q", problems)
	}
	cases := map[string]struct {
		edit func(t *testing.T, c *clusterObjects)
		// every one must be in some problem
		want []string
	}{
		"jason's weights swapped": {
			edit: func(t *testing.T, c *clusterObjects) {
				rules := httpRules(t, c)
				dests := asSlice(rules[0]["route"])
				dests[0]["weight"], dests[1]["weight"] = dests[1]["weight"], dests[0]["weight"]
			},
			want: []string{"cluster1: sidecar hello/", "outbound|5000|v2|helloworld.hello.global 30, outbound|5000|v3|helloworld.hello.global 70"},
		},
		"rules in the other order": {
			edit: func(t *testing.T, c *clusterObjects) {
				u := virtualService(t, c)
				rules, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "http")
				r := rules.([]any)
				r[0], r[1] = r[1], r[0]
			},
			want: []string{"virtual host " + seedGlobal, "virtual host " + seedLocal},
		},
		"local subset v1 not defined": {
			edit: func(t *testing.T, c *clusterObjects) {
				for _, u := range c.istioOfKind("DestinationRule") {
					if h, _, _ := unstructured.NestedString(u.Object, "spec", "host"); h == seedLocal {
						unstructured.RemoveNestedField(u.Object, "spec", "subsets")
						return
					}
				}
				t.Fatalf("no DestinationRule for %s in %s", seedLocal, c.name)
			},
			want: []string{"no cluster outbound|5000|v1|helloworld.hello.svc.cluster.local"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := sc.clusters[callerCluster].deepCopy()
			tc.edit(t, c)
			problems, _ := checkVersionRouting(newPilot(t, c), sourcesOf(pilots), "hello")
			all := strings.Join(problems, "\n")
			for _, p := range problems {
				t.Log(p)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("no problem says %q", w)
				}
			}
		})
	}
}

// virtualService is the caller's VirtualService route wrote.
func virtualService(t *testing.T, c *clusterObjects) *unstructured.Unstructured {
	t.Helper()
	for _, u := range c.istioOfKind("VirtualService") {
		if u.GetNamespace() == "hello" && u.GetName() == "helloworld-hello-route" {
			return u
		}
	}
	t.Fatalf("%s: no VirtualService hello/helloworld-hello-route", c.name)
	return nil
}

// httpRules are the VirtualService's http rules, to edit in place.
func httpRules(t *testing.T, c *clusterObjects) []map[string]any {
	t.Helper()
	rules, _, _ := unstructured.NestedFieldNoCopy(virtualService(t, c).Object, "spec", "http")
	out := asSlice(rules)
	if len(out) != 2 {
		t.Fatalf("%d http rules, want 2 (jason, default)", len(out))
	}
	return out
}
