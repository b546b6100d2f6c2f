package mesh

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// The route checks follow a `.global` request the way pilot builds it
// (DESIGN §1.9): the caller's DestinationRule decides the TLS mode and SNI
// per port and subset, the endpoint's address decides which gateway
// Service of the source cluster receives it, that Service's pods decide
// which Gateways apply, an AUTO_PASSTHROUGH server on 15443 whose hosts
// cover the SNI's host decides whether a filter chain exists, and the
// source's Services and local DestinationRules decide whether the SNI's
// cluster has endpoints. Everything is read beforehand: no I/O here.

// TLSModeIstioMutual is the only mode in which a caller's sidecar presents
// the mesh certificate and an SNI of Istio's form.
const TLSModeIstioMutual = "ISTIO_MUTUAL"

// Route statuses besides a problem kind.
const (
	RouteOK = "OK"
	// RouteUnchecked is a route to a cluster that is not among the
	// reported ones: only the caller's side was checked.
	RouteUnchecked = "Unchecked"
)

// RouteView is what the route checks need of one cluster.
type RouteView struct {
	Cluster string
	Entries []RouteEntry
	// Rules are all DestinationRules: the caller's `.global` ones and a
	// source's local ones.
	Rules    []TLSRule
	Gateways []PassthroughServer
	// GatewayServices are the LoadBalancer and NodePort Services that
	// lead to a gateway's port 15443.
	GatewayServices []GatewayService
	// Services maps "namespace/name" to the Service's port numbers.
	Services map[string][]uint32
	// Gateway is the address status discovered for the cluster, nil when
	// discovery failed: an endpoint elsewhere is CheckGateways' problem.
	Gateway *GatewayAddress
}

// RouteEntry is a ServiceEntry with what routes need beyond Entry.
type RouteEntry struct {
	Entry
	Ports []EntryPort
	// Domain is the source clusters' DNS domain, part of the remote SNI.
	Domain string
}

// EntryPort is one of spec.ports.
type EntryPort struct {
	Name   string
	Number uint32
}

// RouteEntryFrom reads a ServiceEntry (any of the v1alpha3/v1beta1/v1
// versions).
func RouteEntryFrom(u *unstructured.Unstructured) RouteEntry {
	se := rules.ReadServiceEntry(u.Object)
	e := RouteEntry{Entry: EntryFrom(u), Domain: se.ClusterDomain()}
	for _, p := range se.Ports {
		if p.Number != 0 {
			e.Ports = append(e.Ports, EntryPort{Name: p.Name, Number: p.Number})
		}
	}
	return e
}

// TLSRule is what the route checks need of a DestinationRule: its TLS
// settings at every level pilot merges (model.MergeTrafficPolicy).
type TLSRule struct {
	Namespace, Name, Host string
	Policy                *TLSPolicy // spec.trafficPolicy; nil when absent
	Subsets               []TLSSubset
}

// TLSPolicy is the TLS part of a trafficPolicy.
type TLSPolicy struct {
	TLS   *TLS // nil when the policy has no tls
	Ports []PortTLS
}

// PortTLS is one of a policy's portLevelSettings.
type PortTLS struct {
	Port uint32
	TLS  *TLS // nil: the entry has no tls, which still replaces the policy's
	Path string
}

// TLS is one tls block and where it is.
type TLS struct {
	Mode string
	SNI  string
	Path string
}

// TLSSubset is one subset of a rule.
type TLSSubset struct {
	Name   string
	Labels map[string]string
	Policy *TLSPolicy
	Path   string
}

// Ref names the rule as messages do.
func (r TLSRule) Ref() string { return "destinationrule " + r.Namespace + "/" + r.Name }

// TLSRuleFrom reads a DestinationRule.
func TLSRuleFrom(u *unstructured.Unstructured) TLSRule {
	r := TLSRule{Namespace: u.GetNamespace(), Name: u.GetName()}
	r.Host, _, _ = unstructured.NestedString(u.Object, "spec", "host")
	spec := field.NewPath("spec")
	if m, ok, _ := unstructured.NestedMap(u.Object, "spec", "trafficPolicy"); ok {
		r.Policy = tlsPolicyFrom(m, spec.Child("trafficPolicy"))
	}
	subsets, _, _ := unstructured.NestedSlice(u.Object, "spec", "subsets")
	for i, x := range subsets {
		m, ok := x.(map[string]any)
		if !ok {
			continue
		}
		p := spec.Child("subsets").Index(i)
		s := TLSSubset{Path: p.String()}
		s.Name, _, _ = unstructured.NestedString(m, "name")
		s.Labels, _, _ = unstructured.NestedStringMap(m, "labels")
		if tp, ok, _ := unstructured.NestedMap(m, "trafficPolicy"); ok {
			s.Policy = tlsPolicyFrom(tp, p.Child("trafficPolicy"))
		}
		r.Subsets = append(r.Subsets, s)
	}
	return r
}

func tlsPolicyFrom(m map[string]any, path *field.Path) *TLSPolicy {
	p := &TLSPolicy{TLS: tlsFrom(m, path.Child("tls"))}
	pls, _, _ := unstructured.NestedSlice(m, "portLevelSettings")
	for i, x := range pls {
		s, ok := x.(map[string]any)
		if !ok {
			continue
		}
		n, ok := rules.PortNumber(nested(s, "port", "number"))
		if !ok {
			continue
		}
		ip := path.Child("portLevelSettings").Index(i)
		p.Ports = append(p.Ports, PortTLS{Port: n, TLS: tlsFrom(s, ip.Child("tls")), Path: ip.String()})
	}
	return p
}

func tlsFrom(m map[string]any, path *field.Path) *TLS {
	t, ok := m["tls"].(map[string]any)
	if !ok {
		return nil
	}
	mode, _ := t["mode"].(string)
	sni, _ := t["sni"].(string)
	return &TLS{Mode: mode, SNI: sni, Path: path.String()}
}

func nested(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// EffectiveTLS is the tls pilot uses for one port and subset of a rule,
// and the field that decided it ("" when no level sets any).
type EffectiveTLS struct {
	TLS  *TLS
	From string
}

// TLSFor merges the rule's levels for port and subset ("" for none) as
// pilot does: the policy's tls, replaced by its port-level entry for port
// (port-level settings do not inherit, so an entry without tls clears it),
// replaced by the subset's tls, replaced by the subset's port-level entry.
func (r TLSRule) TLSFor(port uint32, subset string) EffectiveTLS {
	var eff EffectiveTLS
	apply := func(p *TLSPolicy) {
		if p == nil {
			return
		}
		if p.TLS != nil {
			eff = EffectiveTLS{TLS: p.TLS, From: p.TLS.Path}
		}
		for _, pt := range p.Ports {
			if pt.Port == port {
				eff = EffectiveTLS{From: pt.Path}
				if pt.TLS != nil {
					eff = EffectiveTLS{TLS: pt.TLS, From: pt.TLS.Path}
				}
				break
			}
		}
	}
	// The rule's own level: its tls, then its port-level entry.
	apply(r.Policy)
	if subset == "" {
		return eff
	}
	for _, s := range r.Subsets {
		if s.Name == subset {
			apply(s.Policy)
			break
		}
	}
	return eff
}

// DefinesSubset reports whether the rule has a subset of that name.
func (r TLSRule) DefinesSubset(name string) bool {
	return slices.ContainsFunc(r.Subsets, func(s TLSSubset) bool { return s.Name == name })
}

// appliesTo reports whether the rule is a source's local rule for Service
// name.namespace (its host may be short; builders owns that rule).
func (r TLSRule) appliesTo(name, namespace string) bool {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"host": r.Host}}}
	u.SetNamespace(r.Namespace)
	return builders.SelectsHost(u, name, namespace)
}

// PassthroughServer is one AUTO_PASSTHROUGH server on 15443 of a Gateway.
type PassthroughServer struct {
	Namespace, Name string
	Index           int // in spec.servers
	Selector        map[string]string
	Hosts           []string
}

// Ref names the Gateway as messages do.
func (s PassthroughServer) Ref() string { return "gateway " + s.Namespace + "/" + s.Name }

// PassthroughServersFrom reads the AUTO_PASSTHROUGH servers on 15443 of a
// Gateway.
func PassthroughServersFrom(u *unstructured.Unstructured) []PassthroughServer {
	sel, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector")
	servers, _, _ := unstructured.NestedSlice(u.Object, "spec", "servers")
	var out []PassthroughServer
	for i, x := range servers {
		m, ok := x.(map[string]any)
		if !ok {
			continue
		}
		port, _ := rules.PortNumber(nested(m, "port", "number"))
		mode, _ := nested(m, "tls", "mode").(string)
		if port != rules.GatewayPort || mode != "AUTO_PASSTHROUGH" {
			continue
		}
		hosts, _, _ := unstructured.NestedStringSlice(m, "hosts")
		out = append(out, PassthroughServer{Namespace: u.GetNamespace(), Name: u.GetName(), Index: i, Selector: sel, Hosts: hosts})
	}
	return out
}

// GatewayService is a Service through which other clusters reach a
// gateway's port 15443.
type GatewayService struct {
	Namespace, Name string
	// Addresses are the load balancer IPs and host names and the external
	// IPs; Ports the Service ports that lead to 15443 on them.
	Addresses []string
	Ports     []uint32
	// NodeAddresses are the cluster's node addresses; NodePorts the node
	// ports that lead to 15443.
	NodeAddresses []string
	NodePorts     []uint32
	// Selector is the Service's selector; PodLabels the labels of the pods
	// it selects (empty when status could not see them: the selector then
	// stands for them).
	Selector  map[string]string
	PodLabels []map[string]string
	// Network is the Service's topology.istio.io/network label: istiod
	// takes a Service so labelled as a gateway of that network.
	Network string
}

// Ref is namespace/name.
func (g GatewayService) Ref() string { return g.Namespace + "/" + g.Name }

func (g GatewayService) serves(address string, port uint32) bool {
	return (slices.Contains(g.Addresses, address) && slices.Contains(g.Ports, port)) ||
		(slices.Contains(g.NodeAddresses, address) && slices.Contains(g.NodePorts, port))
}

func (g GatewayService) pods() []map[string]string {
	if len(g.PodLabels) > 0 {
		return g.PodLabels
	}
	return []map[string]string{g.Selector}
}

// Route is one (host, port, subset, endpoint) a caller sends to: what it
// sends, where it goes, and whether it lands.
type Route struct {
	Caller   string `json:"caller"`
	Entry    string `json:"entry"` // namespace/name of the ServiceEntry
	Host     string `json:"host"`
	Port     uint32 `json:"port"`
	Subset   string `json:"subset,omitempty"`
	SNI      string `json:"sni,omitempty"` // empty: plain text
	Source   string `json:"source"`
	Endpoint string `json:"endpoint"` // address:port
	// GatewayService is the source's Service at Endpoint, Gateway the
	// Gateway whose passthrough server takes the SNI.
	GatewayService string `json:"gatewayService,omitempty"`
	Gateway        string `json:"gateway,omitempty"`
	// LandsOn is the source's cluster the SNI names (pilot's outbound_…
	// cluster of Service), empty when the request lands nowhere.
	LandsOn string `json:"landsOn,omitempty"`
	Service string `json:"service,omitempty"` // namespace/name:port in Source
	// Status is RouteOK, RouteUnchecked or the kind of the first problem.
	Status string `json:"status"`
}

// CheckRoutes follows every port and subset of every `.global` entry of
// caller to the source clusters its endpoints name. Sources missing from
// sources (not reported) get RouteUnchecked rows and no problems.
func CheckRoutes(caller RouteView, sources map[string]RouteView) ([]Route, []Problem) {
	c := routeCheck{caller: caller, sources: sources}
	for _, e := range caller.Entries {
		if !e.Global() {
			continue
		}
		for _, h := range e.Hosts {
			if rules.HasSuffix(h, rules.DefaultSuffix) {
				c.host(e, h)
			}
		}
	}
	return c.routes, dedupe(c.problems)
}

type routeCheck struct {
	caller   RouteView
	sources  map[string]RouteView
	routes   []Route
	problems []Problem
}

func (c *routeCheck) add(p Problem) { c.problems = append(c.problems, p) }

// service is the Service a .global entry stands for: export's annotation,
// else the host's labels.
func service(e RouteEntry, host string) (name, namespace string, ok bool) {
	if ns, n, ok := strings.Cut(e.Source, "/"); ok && ns != "" && n != "" {
		return n, ns, true
	}
	h, err := rules.ParseHost(host, rules.DefaultSuffix)
	if err != nil {
		return "", "", false
	}
	return h.Name, h.Namespace, true
}

func (c *routeCheck) host(e RouteEntry, host string) {
	name, ns, ok := service(e, host)
	if !ok {
		return // not a valid .global host: the webhook's and validate's problem
	}
	t := target{entry: e, host: host, name: name, namespace: ns}
	rule, found := c.ruleFor(host, e.Namespace)
	if !found {
		c.noRule(t)
		return
	}
	t.rule = &rule
	subsets := []string{""}
	for _, s := range rule.Subsets {
		subsets = append(subsets, s.Name)
	}
	for _, p := range e.Ports {
		for _, s := range subsets {
			c.route(t, p, s)
		}
	}
}

// target is one .global host of an entry and the Service it stands for.
type target struct {
	entry           RouteEntry
	host            string
	name, namespace string
	rule            *TLSRule
}

// want is the SNI that lands on port and subset of the Service in the
// source (rules.RemoteSNI).
func (t target) want(port uint32, subset string) rules.SNI {
	return rules.SNI{Port: port, Subset: subset, Host: rules.LocalHostIn(t.name, t.namespace, t.entry.Domain)}
}

// export is the command that writes what routes: the .global rule with
// the remote SNIs in the caller and the local rule in the source.
func (t target) export(src, caller string) string {
	cmd := fmt.Sprintf("kubectl mesh export %s -n %s --from %s --to %s", t.name, t.namespace, src, caller)
	if t.entry.Namespace != t.namespace {
		cmd += " --target-namespace " + t.entry.Namespace
	}
	return cmd
}

func (t target) firstSource() string {
	if s := t.entry.Sources(); len(s) > 0 {
		return s[0]
	}
	return "<source context>"
}

// ruleFor picks the caller's DestinationRule for a .global host as pilot
// does for a sidecar of the entry's namespace: a rule of that namespace,
// else of the root namespace, else (for callers elsewhere) of any other;
// within a namespace the exact host before a wildcard.
func (c *routeCheck) ruleFor(host, namespace string) (TLSRule, bool) {
	var best TLSRule
	bestScore := -1
	for _, r := range c.caller.Rules {
		score := 0
		switch r.Namespace {
		case namespace:
			score = 20
		case rules.IstioSystemNamespace:
			score = 10
		}
		switch {
		case r.Host == host:
			score += 2
		case strings.HasPrefix(r.Host, "*") && strings.HasSuffix(host, strings.TrimPrefix(r.Host, "*")):
			score++
		default:
			continue
		}
		if score > bestScore {
			best, bestScore = r, score
		}
	}
	return best, bestScore >= 0
}

// noRule is the hand-written entry of the guides: without a rule its
// endpoints carry no tlsMode label, so auto-mTLS sends plain text.
func (c *routeCheck) noRule(t target) {
	var pls []string
	for _, p := range t.entry.Ports {
		pls = append(pls, fmt.Sprintf("{port: {number: %d}, tls: {mode: %s, sni: %s}}", p.Number, TLSModeIstioMutual, t.want(p.Number, "")))
	}
	src := t.firstSource()
	c.add(Problem{Cluster: c.caller.Cluster, Kind: ProblemRouteNowhere, Object: "serviceentry " + t.entry.Ref(),
		Message: fmt.Sprintf("no DestinationRule for %s sets tls.mode %s: auto-mTLS sends plain text to %d, which routes nowhere on Istio ≥ 1.14", t.host, TLSModeIstioMutual, rules.GatewayPort),
		Fix: fmt.Sprintf("%s, or add a DestinationRule in %s with spec.host %s and spec.trafficPolicy.portLevelSettings [%s]",
			t.export(src, c.caller.Cluster), t.entry.Namespace, t.host, strings.Join(pls, ", "))})
	for _, p := range t.entry.Ports {
		c.endpoints(t, p, "", "", ProblemRouteNowhere)
	}
}

// route checks one port and subset: the SNI the caller sends, then each
// endpoint.
func (c *routeCheck) route(t target, p EntryPort, subset string) {
	sni, kind := c.sni(t, p, subset)
	c.endpoints(t, p, subset, sni, kind)
}

// sni works out what the caller sends for port and subset; kind is the
// caller-side problem, "" when the SNI lands in principle.
func (c *routeCheck) sni(t target, p EntryPort, subset string) (string, string) {
	r := *t.rule
	eff := r.TLSFor(p.Number, subset)
	want := t.want(p.Number, subset)
	where := fmt.Sprintf("port %d", p.Number)
	if subset != "" {
		where += ", subset " + subset
	}
	fix := fmt.Sprintf("%s, or run %s", tlsFix(r, eff, p.Number, subset, want.String()), t.export(t.firstSource(), c.caller.Cluster))
	// sent is what the sidecar sends, for the route's row: "" is plain text.
	nowhere := func(sent, msg string) (string, string) {
		c.add(Problem{Cluster: c.caller.Cluster, Kind: ProblemRouteNowhere, Object: r.Ref(), Message: msg, Fix: fix})
		return sent, ProblemRouteNowhere
	}
	switch {
	case eff.TLS == nil && eff.From == "":
		return nowhere("", fmt.Sprintf("%s: no tls for %s: auto-mTLS sends plain text to %d (.global endpoints carry no security.istio.io/tlsMode label), which routes nowhere on Istio ≥ 1.14", where, t.host, rules.GatewayPort))
	case eff.TLS == nil:
		return nowhere("", fmt.Sprintf("%s: %s has no tls and replaces the tls above it (port-level settings do not inherit): auto-mTLS sends plain text to %d, which routes nowhere on Istio ≥ 1.14", where, eff.From, rules.GatewayPort))
	case eff.TLS.Mode == "" || eff.TLS.Mode == "DISABLE":
		return nowhere("", fmt.Sprintf("%s: %s.mode is %q (DISABLE): the sidecar sends plain text to %d, which routes nowhere", where, eff.TLS.Path, eff.TLS.Mode, rules.GatewayPort))
	case eff.TLS.Mode != TLSModeIstioMutual:
		return nowhere(eff.TLS.SNI, fmt.Sprintf("%s: %s.mode is %q; only %s presents the mesh certificate and an SNI the source gateway passes through, so this routes nowhere", where, eff.TLS.Path, eff.TLS.Mode, TLSModeIstioMutual))
	case eff.TLS.SNI == "":
		def := rules.SNI{Port: p.Number, Subset: subset, Host: t.host}.String()
		return nowhere(def, fmt.Sprintf("%s: %s sets %s without sni, so pilot sends the default SNI %s, which routes nowhere on Istio ≥ 1.14 (the source has no service named %s)", where, eff.TLS.Path, TLSModeIstioMutual, def, t.host))
	}
	sni, err := rules.ParseSNI(eff.TLS.SNI)
	if err != nil {
		return nowhere(eff.TLS.SNI, fmt.Sprintf("%s: %s.sni: %v", where, eff.TLS.Path, err))
	}
	if rules.HasSuffix(sni.Host, rules.DefaultSuffix) {
		return nowhere(eff.TLS.SNI, fmt.Sprintf("%s: %s.sni is %s, whose host is the .global one, which routes nowhere on Istio ≥ 1.14 (the source has no service named %s)", where, eff.TLS.Path, sni, sni.Host))
	}
	name, ns, _, ok := rules.ServiceOf(sni.Host)
	if !ok {
		return nowhere(eff.TLS.SNI, fmt.Sprintf("%s: %s.sni is %s, whose host %s is not <name>.<namespace>.svc.<domain>: no service of the source has it", where, eff.TLS.Path, sni, sni.Host))
	}
	if sni.Port != p.Number || sni.Subset != subset || name != t.name || ns != t.namespace {
		c.add(Problem{Cluster: c.caller.Cluster, Kind: ProblemSNIMismatch, Object: r.Ref(),
			Message: fmt.Sprintf("%s: %s.sni is %s, which lands on %s, not on %s", where, eff.TLS.Path, sni, landing(sni), landing(want)),
			Fix:     fix})
		return sni.String(), ProblemSNIMismatch
	}
	return sni.String(), ""
}

// landing says in words where an SNI lands.
func landing(s rules.SNI) string {
	out := fmt.Sprintf("port %d of %s", s.Port, s.Host)
	if s.Subset != "" {
		out = "subset " + s.Subset + " of " + out
	}
	return out
}

// tlsFix says which field to set: the port-level tls that decided, else a
// new port-level entry at the subset's level (or the rule's).
func tlsFix(r TLSRule, eff EffectiveTLS, port uint32, subset, sni string) string {
	tls := fmt.Sprintf("{mode: %s, sni: %s}", TLSModeIstioMutual, sni)
	level := "spec.trafficPolicy"
	if subset != "" {
		for _, s := range r.Subsets {
			if s.Name == subset {
				level = s.Path + ".trafficPolicy"
				break
			}
		}
	}
	if strings.HasPrefix(eff.From, level+".portLevelSettings[") {
		return fmt.Sprintf("set %s.tls of %s to %s", strings.TrimSuffix(eff.From, ".tls"), r.Ref(), tls)
	}
	return fmt.Sprintf("add {port: {number: %d}, tls: %s} to %s.portLevelSettings of %s", port, tls, level, r.Ref())
}

// endpoints checks the source side of one port and subset for each
// endpoint the subset selects. A caller-side problem (kind) still has the
// source checked, for the SNI the caller must send, so that every fix
// shows at once.
func (c *routeCheck) endpoints(t target, p EntryPort, subset, sni, kind string) {
	var labels map[string]string
	if t.rule != nil {
		for _, s := range t.rule.Subsets {
			if s.Name == subset {
				labels = s.Labels
			}
		}
	}
	check := t.want(p.Number, subset)
	if kind != ProblemRouteNowhere {
		if s, err := rules.ParseSNI(sni); err == nil {
			check = s
		}
	}
	for i, ep := range t.entry.Endpoints {
		src := ep.Labels[rules.ClusterLabel]
		if src == "" || !rules.SelectorMatches(labels, ep.Labels) {
			continue // the egress gateway's endpoint, or another subset's
		}
		port := p.Number
		if n, ok := ep.Ports[p.Name]; ok {
			port = uint32(n) //nolint:gosec // a port number
		}
		r := Route{Caller: c.caller.Cluster, Entry: t.entry.Ref(), Host: t.host, Port: p.Number, Subset: subset, SNI: sni,
			Source: src, Endpoint: net.JoinHostPort(ep.Address, strconv.FormatUint(uint64(port), 10)), Status: kind}
		view, reported := c.sources[src]
		if !reported {
			if r.Status == "" {
				r.Status = RouteUnchecked
			}
			c.routes = append(c.routes, r)
			continue
		}
		statuses := c.source(t, &r, view, i, ep, port, check)
		if len(statuses) == 0 && kind != ProblemRouteNowhere {
			r.LandsOn = check.String()
		}
		if r.Status == "" && len(statuses) > 0 {
			r.Status = statuses[0]
		}
		if r.Status == "" {
			r.Status = RouteOK
		}
		c.routes = append(c.routes, r)
	}
}

// source checks, in the source cluster, the gateway behind the endpoint,
// its passthrough server, and the Service, port and subset the SNI names.
// It returns the problem kinds found, in that order.
func (c *routeCheck) source(t target, r *Route, view RouteView, i int, ep Endpoint, port uint32, sni rules.SNI) []string {
	var kinds []string
	name, ns, _, _ := rules.ServiceOf(sni.Host)
	epPath := fmt.Sprintf("spec.endpoints[%d]", i)
	// The gateway Service behind the endpoint.
	var gw *GatewayService
	for j := range view.GatewayServices {
		if view.GatewayServices[j].serves(ep.Address, port) {
			gw = &view.GatewayServices[j]
			break
		}
	}
	switch {
	case gw != nil:
		r.GatewayService = gw.Ref()
		if srv, kind, p := c.passthrough(view, *gw, sni, ns, r); kind != "" {
			kinds = append(kinds, kind)
			c.add(p)
		} else {
			r.Gateway = srv.Namespace + "/" + srv.Name
		}
	case view.Gateway != nil && (view.Gateway.Host != ep.Address || view.Gateway.Port != port):
		// CheckGateways reports the endpoint against the discovered gateway.
		kinds = append(kinds, ProblemGatewayMismatch)
	default:
		kinds = append(kinds, ProblemNotAGateway)
		c.add(Problem{Cluster: c.caller.Cluster, Kind: ProblemNotAGateway, Object: "serviceentry " + t.entry.Ref(),
			Message: fmt.Sprintf("%s (%s: %s) is %s, which is neither a load balancer address nor a node port leading to %d of any Service of %s", epPath, rules.ClusterLabel, r.Source, r.Endpoint, rules.GatewayPort, r.Source),
			Fix:     fmt.Sprintf("%s writes the gateway's current address", t.export(r.Source, c.caller.Cluster))})
	}
	// The Service and port the SNI names.
	ports, exists := view.Services[ns+"/"+name]
	switch {
	case !exists && t.entry.Managed && name == t.name && ns == t.namespace:
		kinds = append(kinds, ProblemStaleEntry) // CheckStale reports it
	case !exists:
		kinds = append(kinds, ProblemRemoteService)
		c.add(Problem{Cluster: c.caller.Cluster, Kind: ProblemRemoteService, Object: "serviceentry " + t.entry.Ref(),
			Message: fmt.Sprintf("SNI %s (port %d of %s) needs Service %s/%s in %s, which does not exist", sni, r.Port, t.host, ns, name, r.Source),
			Fix:     fmt.Sprintf("create Service %s/%s in %s, or kubectl mesh unexport %s -n %s --from %s --to %s", ns, name, r.Source, t.name, t.namespace, r.Source, c.caller.Cluster)})
	case !slices.Contains(ports, sni.Port):
		kinds = append(kinds, ProblemRemoteService)
		c.add(Problem{Cluster: c.caller.Cluster, Kind: ProblemRemoteService, Object: "serviceentry " + t.entry.Ref(),
			Message: fmt.Sprintf("SNI %s names port %d, but Service %s/%s in %s has ports %s", sni, sni.Port, ns, name, r.Source, portList(ports)),
			Fix:     fmt.Sprintf("%s writes the Service's current ports", t.export(r.Source, c.caller.Cluster))})
	default:
		r.Service = fmt.Sprintf("%s/%s:%d", ns, name, sni.Port)
	}
	// The subset, defined by a local rule of the source.
	if sni.Subset != "" && exists {
		var local []TLSRule
		for _, lr := range view.Rules {
			if lr.appliesTo(name, ns) {
				local = append(local, lr)
			}
		}
		if !slices.ContainsFunc(local, func(lr TLSRule) bool { return lr.DefinesSubset(sni.Subset) }) {
			kinds = append(kinds, ProblemRemoteSubset)
			c.add(remoteSubset(t, r, sni, name, ns, local, c.caller.Cluster))
		}
	}
	return kinds
}

func remoteSubset(t target, r *Route, sni rules.SNI, name, ns string, local []TLSRule, caller string) Problem {
	p := Problem{Cluster: r.Source, Kind: ProblemRemoteSubset, Object: "service " + ns + "/" + name,
		Message: fmt.Sprintf("%s sends subset %s (SNI %s), but no DestinationRule of %s for %s defines subset %s, so its cluster has no endpoints", caller, sni.Subset, sni, r.Source, sni.Host, sni.Subset),
		Fix:     fmt.Sprintf("%s (it writes the local rule with the versions), or add a DestinationRule for %s in %s with subset {name: %s, labels: {version: %s}}", t.export(r.Source, caller), sni.Host, ns, sni.Subset, sni.Subset)}
	if len(local) > 0 {
		lr := local[0]
		var names []string
		for _, s := range lr.Subsets {
			names = append(names, s.Name)
		}
		p.Object = lr.Ref()
		p.Message = fmt.Sprintf("%s sends subset %s (SNI %s), but %s in %s defines only %s, so its cluster has no endpoints", caller, sni.Subset, sni, lr.Ref(), r.Source, orNone(names))
		p.Fix = fmt.Sprintf("%s, or add {name: %s, labels: {version: %s}} to spec.subsets of %s", t.export(r.Source, caller), sni.Subset, sni.Subset, lr.Ref())
	}
	return p
}

// passthrough finds the Gateway of the source whose AUTO_PASSTHROUGH
// server on 15443 runs on the gateway Service's pods and covers the SNI's
// host; else the problem, explaining the servers that came close.
func (c *routeCheck) passthrough(view RouteView, gw GatewayService, sni rules.SNI, ns string, r *Route) (PassthroughServer, string, Problem) {
	var onPods []PassthroughServer
	for _, s := range view.Gateways {
		if slices.ContainsFunc(gw.pods(), func(l map[string]string) bool { return rules.SelectorMatches(s.Selector, l) }) {
			onPods = append(onPods, s)
		}
	}
	for _, s := range onPods {
		for _, h := range s.Hosts {
			if rules.MatchesGatewayHost(h, s.Namespace, sni.Host, ns) {
				return s, "", Problem{}
			}
		}
	}
	// Named: link's default gateway may be another Service than the one
	// the endpoint reaches.
	fix := fmt.Sprintf("kubectl mesh link --from %s --to %s --gateway-service %s --gateway-namespace %s", c.caller.Cluster, r.Source, gw.Name, gw.Namespace)
	fix += fmt.Sprintf(" (adds a Gateway with an AUTO_PASSTHROUGH server on %d for %s selecting the pods of Service %s)", rules.GatewayPort, rules.LocalHosts, gw.Ref())
	p := Problem{Cluster: r.Source, Kind: ProblemNoPassthrough, Object: "service " + gw.Ref(), Fix: fix}
	if len(onPods) > 0 {
		var parts []string
		global := false
		for _, s := range onPods {
			parts = append(parts, fmt.Sprintf("%s spec.servers[%d].hosts %v", s.Ref(), s.Index, s.Hosts))
			global = global || slices.ContainsFunc(s.Hosts, func(h string) bool {
				pattern := h
				if _, after, scoped := strings.Cut(h, "/"); scoped {
					pattern = after
				}
				return rules.HasSuffix(strings.TrimPrefix(pattern, "*."), rules.DefaultSuffix)
			})
		}
		p.Object = onPods[0].Ref()
		p.Message = fmt.Sprintf("no AUTO_PASSTHROUGH server on %d of the pods of Service %s covers %s, the SNI host %s sends: %s", rules.GatewayPort, gw.Ref(), sni.Host, c.caller.Cluster, strings.Join(parts, "; "))
		if global {
			p.Message += "; a *.global server gets no filter chain on Istio ≥ 1.14, since no service is called *.global"
		}
		p.Fix = fmt.Sprintf("add %s to the hosts of %s, or %s", rules.LocalHosts, onPods[0].Ref(), fix)
		return PassthroughServer{}, ProblemNoPassthrough, p
	}
	var others []string
	for _, s := range view.Gateways {
		others = append(others, fmt.Sprintf("%s selects %s", s.Ref(), rules.FormatLabels(s.Selector)))
	}
	p.Message = fmt.Sprintf("no Gateway with an AUTO_PASSTHROUGH server on %d selects the pods of Service %s (%s), which %s's endpoint %s reaches", rules.GatewayPort, gw.Ref(), rules.FormatLabels(gw.pods()[0]), c.caller.Cluster, r.Endpoint)
	if len(others) > 0 {
		p.Message += "; " + strings.Join(others, "; ")
	}
	return PassthroughServer{}, ProblemNoPassthrough, p
}

func portList(ports []uint32) string {
	if len(ports) == 0 {
		return "none"
	}
	s := make([]string, 0, len(ports))
	for _, p := range slices.Sorted(slices.Values(ports)) {
		s = append(s, strconv.FormatUint(uint64(p), 10))
	}
	return strings.Join(s, ", ")
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "no subsets"
	}
	return strings.Join(names, ", ")
}

// dedupe drops repeats: several entries of one host share their rule's
// problems, and several routes share a source's gateway problem.
func dedupe(ps []Problem) []Problem {
	seen := map[Problem]bool{}
	out := ps[:0]
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}
