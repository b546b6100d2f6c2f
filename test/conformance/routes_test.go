package conformance

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	"istio.io/istio/pilot/pkg/model"
)

// gatewayPort is the SNI-aware AUTO_PASSTHROUGH port of Istio's gateways.
const gatewayPort = 15443

// route is one exported (host, port, subset) of the caller; subset "" is
// the whole service.
type route struct {
	host   string
	port   uint32
	subset string
}

func (r route) String() string {
	return fmt.Sprintf("%s port %d subset %s", r.host, r.port, cmp.Or(r.subset, "(whole service)"))
}

// hop is a route through one of its endpoints: the source cluster whose
// gateway has that address, and the pods pilot lands the request on there.
type hop struct {
	route
	endpoint string // gateway HOST:PORT, as the caller's sidecar dials it
	source   string
	pods     []string
}

// failure is one place where what pilot generated differs from where the
// request must go.
type failure struct {
	cluster string // whose pilot generated it
	route
	endpoint  string // the gateway endpoint followed; "" at the caller
	want, got string
}

func (f failure) String() string {
	via := ""
	if f.endpoint != "" {
		via = " via " + f.endpoint
	}
	return fmt.Sprintf("%s: %s%s: want %s; pilot generated %s", f.cluster, f.route, via, f.want, f.got)
}

// followRoutes follows a request for every port and subset of every
// `.global` ServiceEntry kubectl-mesh wrote in the caller's cluster:
//
//  1. the caller's sidecar (a pod in the entry's namespace) has the cluster
//     outbound|PORT|SUBSET|HOST, sending Istio mTLS with the SNI of the
//     source cluster's own service, outbound_.PORT_.SUBSET_.NAME.NS.svc.cluster.local,
//     to exactly the entry's endpoints the subset selects;
//  2. every such endpoint is the address of a source cluster's gateway
//     Service (load balancer, or node address and node port), whose pods'
//     proxy has on the Service's target port a filter chain for that SNI,
//     proxying TCP to the cluster of the same name;
//  3. that cluster's endpoints are exactly the pods of Service NAME.NS in
//     the source (for a subset, those its DestinationRule subset selects).
//
// It returns what differs, and the hops it followed.
func followRoutes(caller *pilot, sources map[string]*pilot) ([]failure, []hop) {
	f := &follower{
		caller:    caller,
		gateways:  gatewaysByAddress(sources),
		gatewayPx: map[*corev1.Service]*gatewayView{},
	}
	for _, u := range caller.istioOfKind("ServiceEntry") {
		if u.GetLabels()[managedByLabel] != managedByValue {
			continue
		}
		se := &networkingv1.ServiceEntry{}
		if err := fromUnstructured(u, se); err != nil {
			f.fail(failure{cluster: caller.name, route: route{host: u.GetNamespace() + "/" + u.GetName()}, want: "a ServiceEntry Istio can decode", got: err.Error()})
			continue
		}
		for _, host := range se.Spec.Hosts {
			if strings.HasSuffix(host, ".global") {
				f.followHost(se, host)
			}
		}
	}
	return f.failures, f.hops
}

type follower struct {
	caller    *pilot
	gateways  map[string][]sourceGateway
	gatewayPx map[*corev1.Service]*gatewayView
	failures  []failure
	hops      []hop
}

func (f *follower) fail(x failure) { f.failures = append(f.failures, x) }

func (f *follower) followHost(se *networkingv1.ServiceEntry, host string) {
	c := f.caller
	parts := strings.Split(host, ".")
	if len(parts) != 3 {
		f.fail(failure{cluster: c.name, route: route{host: host}, want: "a host NAME.NAMESPACE.global", got: host})
		return
	}
	name, ns := parts[0], parts[1]
	subsets := []string{""}
	dr := c.destinationRule(host, se.Namespace)
	if dr != nil {
		for _, s := range dr.Spec.Subsets {
			subsets = append(subsets, s.Name)
		}
	}
	pod := c.sidecarPod(se.Namespace)
	if pod == nil {
		f.fail(failure{cluster: c.name, route: route{host: host}, want: "a pod with a sidecar in namespace " + se.Namespace + " to call from", got: "none"})
		return
	}
	proxy := c.proxyOf(pod, model.SidecarProxy)
	clusters := c.s.Clusters(proxy)
	for _, port := range se.Spec.Ports {
		for _, subset := range subsets {
			r := route{host: host, port: port.Number, subset: subset}
			cname := fmt.Sprintf("outbound|%d|%s|%s", port.Number, subset, host)
			cl := clusterByName(clusters, cname)
			if cl == nil {
				f.fail(failure{cluster: c.name, route: r, want: "sidecar cluster " + cname, got: "no such cluster"})
				continue
			}
			wantSNI := remoteSNI(port.Number, subset, name, ns)
			tls, how, err := clusterUpstreamTLS(cl)
			if err != nil {
				f.fail(failure{cluster: c.name, route: r, want: "Istio mTLS with SNI " + wantSNI, got: "cluster " + cname + ": " + err.Error() + " (plain text)"})
				continue
			}
			// Auto mTLS (a transport socket match) only applies to
			// endpoints labelled tlsMode=istio; others get plain text.
			if modes := endpointTLSModes(cl); how != "transport_socket" && slices.ContainsFunc(modes, func(m string) bool { return m != "istio" }) {
				f.fail(failure{cluster: c.name, route: r, want: "Istio mTLS with SNI " + wantSNI, got: fmt.Sprintf("cluster %s: TLS only via %s, endpoint tlsModes %q (plain text)", cname, how, modes)})
				continue
			}
			// ISTIO_MUTUAL presents the workload certificate (SDS secret
			// "default"); SIMPLE TLS with the right SNI would pass the gateway
			// but be refused by the callee's sidecar.
			if !slices.ContainsFunc(tls.GetCommonTlsContext().GetTlsCertificateSdsSecretConfigs(), func(c *tlsv3.SdsSecretConfig) bool { return c.GetName() == "default" }) {
				f.fail(failure{cluster: c.name, route: r, want: "Istio mTLS (the workload certificate, SDS secret \"default\")", got: "cluster " + cname + ": TLS without it"})
			}
			sni := tls.GetSni()
			if sni != wantSNI {
				f.fail(failure{cluster: c.name, route: r, want: "SNI " + wantSNI, got: "SNI " + strconv.Quote(sni) + " on cluster " + cname})
			}
			want := entryEndpoints(se, port.Name, port.Number, dr, subset)
			got := clusterEndpoints(c.s, proxy, cl)
			if !slices.Equal(got, want) {
				f.fail(failure{cluster: c.name, route: r, want: fmt.Sprintf("endpoints %v", want), got: fmt.Sprintf("endpoints %v on cluster %s", got, cname)})
			}
			// Follow the request pilot really sends: its endpoints and SNI.
			for _, ep := range got {
				f.followEndpoint(r, name, ns, ep, sni)
			}
		}
	}
}

// remoteSNI is the SNI the caller must send: the source cluster's own
// name for the service's port and subset, which the source gateway's
// *.local passthrough server routes.
func remoteSNI(port uint32, subset, name, ns string) string {
	return fmt.Sprintf("outbound_.%d_.%s_.%s.%s.svc.cluster.local", port, subset, name, ns)
}

// entryEndpoints are the ServiceEntry's endpoints a subset of the caller's
// DestinationRule selects (all for the whole service), HOST:PORT on the
// endpoint's port for the entry port.
func entryEndpoints(se *networkingv1.ServiceEntry, portName string, portNumber uint32, dr *networkingv1.DestinationRule, subset string) []string {
	sel := labels.Everything()
	if subset != "" && dr != nil {
		for _, s := range dr.Spec.Subsets {
			if s.Name == subset {
				sel = labels.SelectorFromSet(s.Labels)
			}
		}
	}
	var out []string
	for _, ep := range se.Spec.Endpoints {
		if !sel.Matches(labels.Set(ep.Labels)) {
			continue
		}
		port := portNumber
		if p, ok := ep.Ports[portName]; ok {
			port = p
		}
		out = append(out, net.JoinHostPort(ep.Address, strconv.FormatUint(uint64(port), 10)))
	}
	slices.Sort(out)
	return out
}

// gatewayView is a source gateway's proxy, or why there is none.
type gatewayView struct {
	proxy *model.Proxy
	err   string
}

func (f *follower) followEndpoint(r route, name, ns, endpoint, sni string) {
	gws := f.gateways[endpoint]
	if len(gws) != 1 {
		f.fail(failure{cluster: f.caller.name, route: r, endpoint: endpoint, want: "the address of exactly one lab cluster's gateway Service port to " + strconv.Itoa(gatewayPort), got: fmt.Sprintf("%d such gateways", len(gws))})
		return
	}
	gw := gws[0]
	src := gw.src
	h := hop{route: r, endpoint: endpoint, source: src.name}
	defer func() { f.hops = append(f.hops, h) }()
	fail := func(want, got string) {
		f.fail(failure{cluster: src.name, route: r, endpoint: endpoint, want: want, got: got})
	}
	v := f.gatewayProxy(gw)
	if v.err != "" {
		fail("a pod behind gateway Service "+gw.svc.Namespace+"/"+gw.svc.Name, v.err)
		return
	}
	l := listenerByPort(src.s.Listeners(v.proxy), gw.listenerPort)
	if l == nil {
		fail(fmt.Sprintf("a gateway listener on %d", gw.listenerPort), fmt.Sprintf("listeners %v", listenerNames(src.s.Listeners(v.proxy))))
		return
	}
	fc := filterChainBySNI(l, sni)
	if fc == nil {
		fail(fmt.Sprintf("a filter chain on %d for SNI %s", gw.listenerPort, sni), chainsOf(l, name, ns))
		return
	}
	upstream, err := tcpProxyCluster(fc)
	if err != nil || upstream != sni {
		fail("tcp_proxy to cluster "+sni, fmt.Sprintf("tcp_proxy to %q (%v)", upstream, err))
		return
	}
	cl := clusterByName(src.s.Clusters(v.proxy), upstream)
	if cl == nil {
		fail("gateway cluster "+upstream, "no such cluster")
		return
	}
	got := clusterEndpoints(src.s, v.proxy, cl)
	for _, ep := range got {
		ip, _, _ := net.SplitHostPort(ep)
		h.pods = append(h.pods, src.podNameByIP(ip))
	}
	slices.Sort(h.pods)
	want, missing := src.landing(name, ns, r.port, r.subset)
	switch {
	case missing != "":
		fail(missing+" to land on", fmt.Sprintf("endpoints %v", got))
	case len(want) == 0:
		fail("pods to land on", fmt.Sprintf("endpoints %v, and %s selects no pod", got, r))
	case !slices.Equal(got, want):
		fail(fmt.Sprintf("endpoints %v", want), fmt.Sprintf("endpoints %v on cluster %s", got, upstream))
	}
}

// chainsOf says which SNIs of NAME.NS the listener has chains for (all
// the cluster's services have some; the rest is only counted).
func chainsOf(l *listenerv3.Listener, name, ns string) string {
	var mine []string
	all := serverNamesOf(l)
	for _, sni := range all {
		if strings.HasSuffix(sni, "_."+name+"."+ns+".svc.cluster.local") {
			mine = append(mine, sni)
		}
	}
	return fmt.Sprintf("chains for %v (and %d SNIs of other services)", mine, len(all)-len(mine))
}

// gatewayProxy is the proxy of the first pod behind a gateway Service.
func (f *follower) gatewayProxy(gw sourceGateway) *gatewayView {
	if v, ok := f.gatewayPx[gw.svc]; ok {
		return v
	}
	v := &gatewayView{}
	pods := gw.src.podsSelectedBy(gw.svc.Namespace, gw.svc.Spec.Selector)
	if len(gw.svc.Spec.Selector) == 0 || len(pods) == 0 {
		v.err = fmt.Sprintf("no pod matches selector %v", gw.svc.Spec.Selector)
	} else {
		v.proxy = gw.src.proxyOf(pods[0], model.Router)
	}
	f.gatewayPx[gw.svc] = v
	return v
}

// sourceGateway is a source cluster's gateway Service reachable on an
// address: its port to the gateway's 15443.
type sourceGateway struct {
	src          *pilot
	svc          *corev1.Service
	listenerPort uint32 // the target port: where the gateway's listener binds
}

// gatewaysByAddress finds, in every source cluster, the Services with a
// port whose target is 15443 and the addresses other clusters reach it on:
// each load balancer ingress (IP or host name) on the Service port, and each
// node address on the node port.
func gatewaysByAddress(sources map[string]*pilot) map[string][]sourceGateway {
	out := map[string][]sourceGateway{}
	for _, name := range slices.Sorted(maps.Keys(sources)) {
		src := sources[name]
		for i := range src.services {
			svc := &src.services[i]
			for _, sp := range svc.Spec.Ports {
				target := sp.TargetPort.IntVal
				if sp.TargetPort.Type == intstr.String || target == 0 {
					target = sp.Port
				}
				if target != gatewayPort {
					continue
				}
				gw := sourceGateway{src: src, svc: svc, listenerPort: uint32(target)} //nolint:gosec // a port is 1..65535
				for _, in := range svc.Status.LoadBalancer.Ingress {
					for _, host := range []string{in.IP, in.Hostname} {
						if host != "" {
							addr := net.JoinHostPort(host, strconv.Itoa(int(sp.Port)))
							out[addr] = append(out[addr], gw)
						}
					}
				}
				if sp.NodePort == 0 {
					continue
				}
				for _, n := range src.nodes {
					for _, a := range n.Status.Addresses {
						if a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP {
							addr := net.JoinHostPort(a.Address, strconv.Itoa(int(sp.NodePort)))
							out[addr] = append(out[addr], gw)
						}
					}
				}
			}
		}
	}
	return out
}

// landing is where a request for NAME.NS port PORT, subset SUBSET must land
// in this (source) cluster: POD_IP:TARGET_PORT of the pods the Service
// selects, narrowed to those its DestinationRule's subset selects; or what
// the cluster lacks for it.
func (p *pilot) landing(name, ns string, port uint32, subset string) (_ []string, missing string) {
	svc := p.service(ns, name)
	if svc == nil {
		return nil, fmt.Sprintf("a Service %s/%s", ns, name)
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if uint32(svc.Spec.Ports[i].Port) == port { //nolint:gosec // a port is 1..65535
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		return nil, fmt.Sprintf("port %d on Service %s/%s", port, ns, name)
	}
	pods := p.podsSelectedBy(ns, svc.Spec.Selector)
	if subset != "" {
		fqdn := name + "." + ns + ".svc.cluster.local"
		sel := p.subsetSelector(fqdn, subset)
		if sel == nil {
			return nil, fmt.Sprintf("a DestinationRule for %s with subset %s", fqdn, subset)
		}
		pods = slices.DeleteFunc(pods, func(pod *corev1.Pod) bool { return !sel.Matches(labels.Set(pod.Labels)) })
	}
	var out []string
	for _, pod := range pods {
		target := sp.TargetPort.IntVal
		if sp.TargetPort.Type == intstr.String {
			target, _ = containerPort(pod, sp.TargetPort.StrVal)
		} else if target == 0 {
			target = sp.Port
		}
		out = append(out, net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(target))))
	}
	slices.Sort(out)
	return out, ""
}

// subsetSelector is the pod selector of a subset of the cluster's
// DestinationRule for fqdn (its host written in full, or as the bare name
// in the service's namespace), or nil.
func (p *pilot) subsetSelector(fqdn, subset string) labels.Selector {
	name, rest, _ := strings.Cut(fqdn, ".")
	ns, _, _ := strings.Cut(rest, ".")
	for _, u := range p.istioOfKind("DestinationRule") {
		dr := &networkingv1.DestinationRule{}
		if fromUnstructured(u, dr) != nil {
			continue
		}
		if h := dr.Spec.Host; h != fqdn && (h != name || dr.Namespace != ns) {
			continue
		}
		for _, s := range dr.Spec.Subsets {
			if s.Name == subset {
				return labels.SelectorFromSet(s.Labels)
			}
		}
	}
	return nil
}

// destinationRule is the caller's DestinationRule for host as a proxy in
// namespace ns sees it: its own namespace's first, then any other.
func (p *pilot) destinationRule(host, ns string) *networkingv1.DestinationRule {
	var found *networkingv1.DestinationRule
	for _, u := range p.istioOfKind("DestinationRule") {
		dr := &networkingv1.DestinationRule{}
		if fromUnstructured(u, dr) != nil || dr.Spec.Host != host {
			continue
		}
		if dr.Namespace == ns {
			return dr
		}
		if found == nil {
			found = dr
		}
	}
	return found
}

// sidecarPod is the first pod of namespace ns with a sidecar.
func (p *pilot) sidecarPod(ns string) *corev1.Pod {
	for i := range p.pods {
		if pod := &p.pods[i]; pod.Namespace == ns && pod.Labels[tlsModeLabel] == "istio" {
			return pod
		}
	}
	return nil
}

// fromUnstructured decodes an Istio object with Istio's own types.
func fromUnstructured(u *unstructured.Unstructured, into any) error {
	b, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

// ---------------------------------------------------------------------------
// the tests
// ---------------------------------------------------------------------------

// wantLanded is this scenario's routes, written out rather than derived from
// the objects, so that the test cannot pass on fewer routes than the
// product must make: route → source cluster → pods landed on.
var wantLanded = map[route]map[string][]string{
	{"httpbin.bar.global", 8000, ""}:        {"cluster2": {"httpbin-v1"}},
	{"httpbin.bar.global", 8000, "v1"}:      {"cluster2": {"httpbin-v1"}},
	{"helloworld.hello.global", 5000, ""}:   {"cluster2": {"helloworld-v2", "helloworld-v3"}, "cluster4": {"helloworld-v5"}, "cluster5": {"helloworld-v6"}},
	{"helloworld.hello.global", 5000, "v2"}: {"cluster2": {"helloworld-v2"}},
	{"helloworld.hello.global", 5000, "v3"}: {"cluster2": {"helloworld-v3"}},
	{"helloworld.hello.global", 5000, "v5"}: {"cluster4": {"helloworld-v5"}},
	{"helloworld.hello.global", 5000, "v6"}: {"cluster5": {"helloworld-v6"}},
}

func landed(hops []hop) map[route]map[string][]string {
	out := map[route]map[string][]string{}
	for _, h := range hops {
		if out[h.route] == nil {
			out[h.route] = map[string][]string{}
		}
		out[h.route][h.source] = append(out[h.route][h.source], h.pods...)
	}
	return out
}

func formatLanded(m map[route]map[string][]string) string {
	var b strings.Builder
	for _, r := range slices.SortedFunc(maps.Keys(m), compareRoutes) {
		fmt.Fprintf(&b, "\n  %s →", r)
		for _, src := range slices.Sorted(maps.Keys(m[r])) {
			fmt.Fprintf(&b, " %s%v", src, m[r][src])
		}
	}
	return b.String()
}

func compareRoutes(a, b route) int {
	return cmp.Or(cmp.Compare(a.host, b.host), cmp.Compare(a.port, b.port), cmp.Compare(a.subset, b.subset))
}

func sourcesOf(pilots map[string]*pilot) map[string]*pilot {
	out := maps.Clone(pilots)
	delete(out, callerCluster)
	return out
}

// TestRoutes follows every route the product exported into cluster1 through
// Istio's own pilots, and checks that they are this scenario's routes.
func TestRoutes(t *testing.T) {
	sc := needScenario(t)
	for _, step := range slices.Sorted(maps.Keys(sc.took)) {
		t.Logf("%s took %s", step, sc.took[step].Round(100*time.Millisecond))
	}
	pilots := newPilots(t, sc)
	failures, hops := followRoutes(pilots[callerCluster], sourcesOf(pilots))
	for _, f := range failures {
		t.Error(f)
	}
	got := landed(hops)
	if !maps.EqualFunc(got, wantLanded, func(a, b map[string][]string) bool { return maps.EqualFunc(a, b, slices.Equal) }) {
		t.Errorf("routes followed (route → source cluster[pods landed on]):%s\nwant:%s", formatLanded(got), formatLanded(wantLanded))
	}
	// 7 routes, 9 hops: the whole helloworld service lands in three clusters.
	if len(got) != 7 || len(hops) != 9 {
		t.Errorf("followed %d routes in %d hops, want 7 routes in 9 hops", len(got), len(hops))
	}
	t.Logf("followed %d routes in %d hops:%s", len(got), len(hops), formatLanded(got))
}

// TestRoutesCanFail breaks one thing at a time in a copy of what the product
// wrote and checks that followRoutes reports exactly the routes it breaks.
func TestRoutesCanFail(t *testing.T) {
	sc := needScenario(t)
	pilots := newPilots(t, sc)
	baseFailures, baseHops := followRoutes(pilots[callerCluster], sourcesOf(pilots))
	if len(baseFailures) > 0 || len(baseHops) == 0 {
		t.Fatalf("the unbroken scenario must route (see TestRoutes): %d failures, %d hops", len(baseFailures), len(baseHops))
	}

	brokenSubset := map[string]func(tls map[string]any){
		"subset v2 without its SNI": func(tls map[string]any) { delete(tls, "sni") },
		"subset v2 with SIMPLE TLS": func(tls map[string]any) { tls["mode"] = "SIMPLE" },
	}
	for name, breakTLS := range brokenSubset {
		t.Run(name, func(t *testing.T) {
			broken := route{"helloworld.hello.global", 5000, "v2"}
			caller := sc.clusters[callerCluster].deepCopy()
			editSubsetPortTLS(t, caller, broken, breakTLS)
			failures, _ := followRoutes(newPilot(t, caller), sourcesOf(pilots))
			if len(failures) == 0 {
				t.Fatalf("no failure with %s", name)
			}
			for _, f := range failures {
				t.Log(f)
				if f.route != broken {
					t.Errorf("failure for another route than %s: %s", broken, f)
				}
			}
		})
	}

	for _, src := range []string{"cluster2", "cluster4", "cluster5"} {
		t.Run(src+" Gateway hosts *.global", func(t *testing.T) {
			// Older versions of the product passed *.global through, which
			// no callee service matches.
			c := sc.clusters[src].deepCopy()
			setPassthroughHosts(t, c, "*.global")
			sources := sourcesOf(pilots)
			sources[src] = newPilot(t, c)
			failures, _ := followRoutes(pilots[callerCluster], sources)
			want := map[string]bool{}
			for _, h := range baseHops {
				if h.source == src {
					want[h.String()+" via "+h.endpoint] = true
				}
			}
			got := map[string]bool{}
			for _, f := range failures {
				t.Log(f)
				got[f.route.String()+" via "+f.endpoint] = true
			}
			if len(want) == 0 || !maps.Equal(got, want) {
				t.Errorf("failing routes = %v, want every route through %s's gateway: %v", slices.Sorted(maps.Keys(got)), src, slices.Sorted(maps.Keys(want)))
			}
		})
	}
}

// editSubsetPortTLS edits the tls of the port-level setting of r's port in
// r's subset of the caller's .global DestinationRule.
func editSubsetPortTLS(t *testing.T, c *clusterObjects, r route, edit func(tls map[string]any)) {
	t.Helper()
	for _, u := range c.istioOfKind("DestinationRule") {
		if host, _, _ := unstructured.NestedString(u.Object, "spec", "host"); host != r.host {
			continue
		}
		subsets, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "subsets")
		for _, s := range asSlice(subsets) {
			if s["name"] != r.subset {
				continue
			}
			settings, _, _ := unstructured.NestedFieldNoCopy(s, "trafficPolicy", "portLevelSettings")
			for _, pls := range asSlice(settings) {
				n, _, _ := unstructured.NestedInt64(pls, "port", "number")
				tls, ok, _ := unstructured.NestedFieldNoCopy(pls, "tls")
				if tls, isMap := tls.(map[string]any); ok && isMap && n == int64(r.port) {
					edit(tls)
					return
				}
			}
		}
	}
	t.Fatalf("%s: no port-level tls for %s in a DestinationRule", c.name, r)
}

// asSlice is a list of objects of an unstructured object, which the caller
// edits in place.
func asSlice(v any) []map[string]any {
	items, _ := v.([]any)
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// setPassthroughHosts sets the hosts of every AUTO_PASSTHROUGH server of the
// cluster's Gateways.
func setPassthroughHosts(t *testing.T, c *clusterObjects, hosts ...string) {
	t.Helper()
	changed := 0
	for _, u := range c.istioOfKind("Gateway") {
		servers, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "servers")
		for _, s := range asSlice(servers) {
			if mode, _, _ := unstructured.NestedString(s, "tls", "mode"); mode == "AUTO_PASSTHROUGH" {
				s["hosts"] = toAnySlice(hosts)
				changed++
			}
		}
	}
	if changed == 0 {
		t.Fatalf("%s: no AUTO_PASSTHROUGH Gateway server", c.name)
	}
}

func toAnySlice(in []string) []any {
	out := make([]any, len(in))
	for i, s := range in {
		out[i] = s
	}
	return out
}
