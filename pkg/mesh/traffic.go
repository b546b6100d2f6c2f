package mesh

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// PolicyLevel is one traffic policy of a DestinationRule: the rule's own,
// a port-level one, a subset's, or a subset's port-level one. Pilot takes
// the load balancer and outlier detection of the most specific level for a
// port: a port-level setting does not inherit them.
type PolicyLevel struct {
	Path       string // field path, e.g. spec.subsets[0].trafficPolicy.portLevelSettings[1]
	Port       int64  // 0 for a policy that is not port-level
	Subset     string
	Locality   bool // loadBalancer.localityLbSetting has failover or distribute
	Failover   bool
	OutlierSet bool
}

// TrafficRule is what the locality checks need of a DestinationRule.
type TrafficRule struct {
	Namespace, Name, Host string
	Subsets               []Subset
	Levels                []PolicyLevel
}

// Ref names the rule as problems do.
func (r TrafficRule) Ref() string { return "destinationrule " + r.Namespace + "/" + r.Name }

// TrafficRuleFrom reads a DestinationRule's policy levels.
func TrafficRuleFrom(u *unstructured.Unstructured) TrafficRule {
	d := DestRuleFrom(u)
	r := TrafficRule{Namespace: d.Namespace, Name: d.Name, Host: d.Host, Subsets: d.Subsets}
	add := func(path, subset string, policy map[string]any) {
		r.Levels = append(r.Levels, policyLevel(path, subset, 0, policy))
		pls, _, _ := unstructured.NestedSlice(policy, "portLevelSettings")
		for i, raw := range pls {
			pl, _ := raw.(map[string]any)
			port, _, _ := unstructured.NestedFieldNoCopy(pl, "port", "number")
			n, _ := rules.Integer(port)
			r.Levels = append(r.Levels, policyLevel(fmt.Sprintf("%s.portLevelSettings[%d]", path, i), subset, n, pl))
		}
	}
	if top, ok, _ := unstructured.NestedMap(u.Object, "spec", "trafficPolicy"); ok {
		add("spec.trafficPolicy", "", top)
	}
	subsets, _, _ := unstructured.NestedSlice(u.Object, "spec", "subsets")
	for i, raw := range subsets {
		s, _ := raw.(map[string]any)
		name, _ := s["name"].(string)
		if p, ok, _ := unstructured.NestedMap(s, "trafficPolicy"); ok {
			add(fmt.Sprintf("spec.subsets[%d].trafficPolicy", i), name, p)
		}
	}
	return r
}

func policyLevel(path, subset string, port int64, policy map[string]any) PolicyLevel {
	l := PolicyLevel{Path: path, Subset: subset, Port: port}
	lb, _, _ := unstructured.NestedMap(policy, "loadBalancer", "localityLbSetting")
	failover, _, _ := unstructured.NestedSlice(lb, "failover")
	distribute, _, _ := unstructured.NestedSlice(lb, "distribute")
	l.Failover = len(failover) > 0
	l.Locality = l.Failover || len(distribute) > 0
	_, l.OutlierSet = policy["outlierDetection"]
	return l
}

// CheckLocality finds locality policies that do nothing: failover without
// outlier detection (Envoy never ejects an endpoint, so never fails over),
// a rule-level policy that a port-level setting drops (they do not
// inherit), and a policy on a .global host whose endpoints carry no
// locality (every remote cluster is then one place).
func CheckLocality(cluster string, trafficRules []TrafficRule, entries []Entry) []Problem {
	var out []Problem
	for _, r := range trafficRules {
		if !slices.ContainsFunc(r.Levels, func(l PolicyLevel) bool { return l.Locality }) {
			continue
		}
		for _, l := range r.Levels {
			if l.Failover && !l.OutlierSet {
				out = append(out, Problem{Cluster: cluster, Kind: ProblemFailoverNoEject, Object: r.Ref(),
					Message: fmt.Sprintf("%s.loadBalancer.localityLbSetting.failover without %s.outlierDetection: no endpoint is ever ejected, so traffic never fails over", l.Path, l.Path),
					Fix:     fmt.Sprintf("add outlierDetection (e.g. consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 1m) there, or run kubectl mesh route %s --failover … which writes both", routeTarget(r))})
			}
			if l.Port != 0 && !l.Locality && parentHasLocality(r.Levels, l) {
				out = append(out, Problem{Cluster: cluster, Kind: ProblemLocalityDropped, Object: r.Ref(),
					Message: fmt.Sprintf("%s (port %d) has no localityLbSetting: port-level settings do not inherit the rule's, so port %d is balanced without locality", l.Path, l.Port, l.Port),
					Fix:     fmt.Sprintf("repeat loadBalancer and outlierDetection in every portLevelSettings entry, or run kubectl mesh route %s with the policy again", routeTarget(r))})
			}
		}
		if rules.HasSuffix(r.Host, rules.DefaultSuffix) {
			var missing []string
			for _, e := range entries {
				if !slices.Contains(e.Hosts, r.Host) {
					continue
				}
				for _, ep := range e.Endpoints {
					if ep.Locality == "" {
						missing = append(missing, fmt.Sprintf("%s (%s)", ep.Address, ep.Labels[rules.ClusterLabel]))
					}
				}
			}
			if len(missing) > 0 {
				out = append(out, Problem{Cluster: cluster, Kind: ProblemNoLocality, Object: r.Ref(),
					Message: fmt.Sprintf("it balances %s by locality, but endpoints %s carry no locality, so Istio sees those remote clusters as one place", r.Host, strings.Join(missing, ", ")),
					Fix:     "export the Service again (export sets each endpoint's locality from its source's nodes), or with --locality REGION[/ZONE]"})
			}
		}
	}
	return out
}

// parentHasLocality reports whether the level a port-level setting
// replaces (the rule's, or its subset's) has a locality policy.
func parentHasLocality(levels []PolicyLevel, pl PolicyLevel) bool {
	parent := pl.Path[:strings.LastIndex(pl.Path, ".portLevelSettings[")]
	return slices.ContainsFunc(levels, func(l PolicyLevel) bool { return l.Path == parent && l.Locality })
}

func routeTarget(r TrafficRule) string {
	if h, err := rules.ParseHost(r.Host, rules.DefaultSuffix); err == nil {
		return h.Name + " -n " + h.Namespace
	}
	if name, ns, _, ok := rules.ServiceOf(r.Host); ok {
		return name + " -n " + ns + " --host local"
	}
	return "<service> -n <namespace>"
}

// RouteDestination is one destination of a VirtualService's HTTP route.
type RouteDestination struct {
	VirtualService string // namespace/name
	Path           string // spec.http[i].route[j].destination
	Host, Subset   string
}

// VirtualServiceDestinations reads the destinations of a VirtualService's
// HTTP routes, with their hosts made fully qualified the way Istio does
// (a short name is a Service of the VirtualService's namespace).
func VirtualServiceDestinations(u *unstructured.Unstructured) []RouteDestination {
	var out []RouteDestination
	http, _, _ := unstructured.NestedSlice(u.Object, "spec", "http")
	for i, raw := range http {
		h, _ := raw.(map[string]any)
		routes, _, _ := unstructured.NestedSlice(h, "route")
		for j, rr := range routes {
			r, _ := rr.(map[string]any)
			host, _, _ := unstructured.NestedString(r, "destination", "host")
			subset, _, _ := unstructured.NestedString(r, "destination", "subset")
			out = append(out, RouteDestination{
				VirtualService: u.GetNamespace() + "/" + u.GetName(),
				Path:           fmt.Sprintf("spec.http[%d].route[%d].destination", i, j),
				Host:           qualify(host, u.GetNamespace()), Subset: subset,
			})
		}
	}
	return out
}

// qualify makes a short host name (name, name.ns, name.ns.svc) fully
// qualified in cluster.local.
func qualify(host, ns string) string {
	switch strings.Count(host, ".") {
	case 0:
		return rules.LocalHostIn(host, ns, "")
	case 1:
		name, n, _ := strings.Cut(host, ".")
		if n != rules.DefaultSuffix {
			return rules.LocalHostIn(name, n, "")
		}
	case 2:
		if name, rest, _ := strings.Cut(host, "."); strings.HasSuffix(rest, ".svc") {
			return rules.LocalHostIn(name, strings.TrimSuffix(rest, ".svc"), "")
		}
	}
	return host
}

// CheckRouteSubsets finds VirtualService routes to a subset no
// DestinationRule of the host defines (Istio then routes them nowhere:
// the subset's cluster does not exist), and routes to a .global host no
// ServiceEntry serves.
func CheckRouteSubsets(cluster string, dests []RouteDestination, drs []DestRule, entries []Entry) []Problem {
	var out []Problem
	for _, d := range dests {
		obj := "virtualservice " + d.VirtualService
		if rules.HasSuffix(d.Host, rules.DefaultSuffix) && !slices.ContainsFunc(entries, func(e Entry) bool { return slices.Contains(e.Hosts, d.Host) }) {
			out = append(out, Problem{Cluster: cluster, Kind: ProblemRouteSubset, Object: obj,
				Message: fmt.Sprintf("%s routes to %s, which no ServiceEntry of this cluster serves", d.Path, d.Host),
				Fix:     fmt.Sprintf("export the Service into %s (kubectl mesh export … --to %s), or route elsewhere", cluster, cluster)})
			continue
		}
		if d.Subset == "" {
			continue
		}
		defined := slices.ContainsFunc(drs, func(r DestRule) bool {
			return qualify(r.Host, r.Namespace) == d.Host && slices.ContainsFunc(r.Subsets, func(s Subset) bool { return s.Name == d.Subset })
		})
		if !defined {
			out = append(out, Problem{Cluster: cluster, Kind: ProblemRouteSubset, Object: obj,
				Message: fmt.Sprintf("%s routes to subset %s of %s, which no DestinationRule of this cluster defines, so those requests fail", d.Path, d.Subset, d.Host),
				Fix:     fmt.Sprintf("define subset %s in the DestinationRule of %s (kubectl mesh route and export write them), or route to a defined subset", d.Subset, d.Host)})
		}
	}
	return out
}
