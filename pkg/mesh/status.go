package mesh

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// Entry is what status needs of a ServiceEntry.
type Entry struct {
	Namespace, Name string
	Hosts           []string
	Addresses       []string
	Endpoints       []Endpoint
	Managed         bool
	// SourceClusters and Source ("namespace/name" of the exported
	// Service) come from export's annotations.
	SourceClusters []string
	Source         string
}

// Endpoint is one ServiceEntry endpoint, as the one ServiceEntry view reads
// it.
type Endpoint = rules.Endpoint

// Ref is namespace/name.
func (e Entry) Ref() string { return e.Namespace + "/" + e.Name }

// Global reports whether the entry has a host in the .global zone.
func (e Entry) Global() bool {
	return slices.ContainsFunc(e.Hosts, func(h string) bool { return rules.HasSuffix(h, rules.DefaultSuffix) })
}

// EntryFrom reads a ServiceEntry (any of the v1alpha3/v1beta1/v1 versions).
func EntryFrom(u *unstructured.Unstructured) Entry {
	se := rules.ReadServiceEntry(u.Object)
	return Entry{
		Namespace: se.Namespace, Name: se.Name,
		Hosts: se.Hosts, Addresses: se.Addresses, Endpoints: se.Endpoints,
		Managed:        se.Managed(),
		SourceClusters: se.SourceClusters(),
		Source:         se.ExportedFrom(),
	}
}

// Sources are the entry's source clusters: the annotation, else the
// endpoints' cluster labels.
func (e Entry) Sources() []string {
	if len(e.SourceClusters) > 0 {
		return e.SourceClusters
	}
	var out []string
	for _, ep := range e.Endpoints {
		if c := ep.Labels[rules.ClusterLabel]; c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// DestRule is what status needs of a DestinationRule.
type DestRule struct {
	Namespace, Name, Host string
	Subsets               []Subset
}

// Subset is one DestinationRule subset.
type Subset struct {
	Name   string
	Labels map[string]string
}

// DestRuleFrom reads a DestinationRule.
func DestRuleFrom(u *unstructured.Unstructured) DestRule {
	d := DestRule{Namespace: u.GetNamespace(), Name: u.GetName()}
	d.Host, _, _ = unstructured.NestedString(u.Object, "spec", "host")
	subsets, _, _ := unstructured.NestedSlice(u.Object, "spec", "subsets")
	for _, x := range subsets {
		m, ok := x.(map[string]any)
		if !ok {
			continue
		}
		s := Subset{}
		s.Name, _, _ = unstructured.NestedString(m, "name")
		s.Labels, _, _ = unstructured.NestedStringMap(m, "labels")
		d.Subsets = append(d.Subsets, s)
	}
	return d
}

// Problem is one thing status found wrong: where, what, and the fix.
type Problem struct {
	Cluster string `json:"cluster"`
	Kind    string `json:"kind"`
	Object  string `json:"object"`
	Message string `json:"message"`
	Fix     string `json:"fix"`
}

// Kinds of problems.
const (
	ProblemDuplicateVIP    = "DuplicateVIP"
	ProblemInvalidVIP      = "InvalidVIP"
	ProblemStaleEntry      = "StaleEntry"
	ProblemGatewayMismatch = "GatewayMismatch"
	ProblemSubsetLabels    = "SubsetSelectsNothing"
	ProblemPeerUnreachable = "PeerUnreachable"
	ProblemLinkIncomplete  = "LinkIncomplete"
	ProblemNoGlobalDNS     = "GlobalNamesDoNotResolve"
	ProblemRouteSubset     = "RouteToUndefinedSubset"
	ProblemFailoverNoEject = "FailoverWithoutOutlierDetection"
	ProblemLocalityDropped = "LocalityPolicyDroppedForPort"
	ProblemNoLocality      = "EndpointsWithoutLocality"

	// Route problems (routes.go): a (host, port, subset) of a .global
	// entry that lands nowhere, and why.
	ProblemRouteNowhere  = "RoutesNowhere"
	ProblemSNIMismatch   = "SNIMismatch"
	ProblemNotAGateway   = "EndpointNotAGateway"
	ProblemNoPassthrough = "NoPassthroughGateway"
	ProblemRemoteService = "RemoteServiceMissing"
	ProblemRemoteSubset  = "RemoteSubsetMissing"
)

// CheckVIPs finds addresses shared by several ServiceEntries and, on
// .global entries, addresses outside the class-E VIP rules.
func CheckVIPs(cluster string, entries []Entry, space rules.VIPSpace) []Problem {
	var out []Problem
	holders := map[string][]string{}
	for _, e := range entries {
		for _, a := range slices.Compact(slices.Sorted(slices.Values(e.Addresses))) {
			holders[a] = append(holders[a], "serviceentry "+e.Ref())
		}
	}
	for _, a := range slices.Sorted(maps.Keys(holders)) {
		if hs := holders[a]; len(hs) > 1 {
			out = append(out, Problem{Cluster: cluster, Kind: ProblemDuplicateVIP, Object: strings.Join(hs, ", "),
				Message: fmt.Sprintf("VIP %s is used by %d ServiceEntries", a, len(hs)),
				Fix:     "give all but one of them another address, or remove spec.addresses and let mesh-webhook (or kubectl mesh export) allocate one"})
		}
	}
	for _, e := range entries {
		if !e.Global() {
			continue
		}
		for i, a := range e.Addresses {
			for _, err := range rules.ValidateVIP(a, space, field.NewPath("spec", "addresses").Index(i)) {
				out = append(out, Problem{Cluster: cluster, Kind: ProblemInvalidVIP, Object: "serviceentry " + e.Ref(),
					Message: err.Error(), Fix: fmt.Sprintf("use an unused address of %s, or remove spec.addresses and let mesh-webhook allocate one", space)})
			}
		}
	}
	return out
}

// ServiceLookup says whether Service namespace/name exists in cluster;
// known is false when status cannot tell (cluster not reachable or not
// among --contexts).
type ServiceLookup func(cluster, namespace, name string) (exists, known bool)

// CheckStale finds exported .global entries whose source Service no longer
// exists in a source cluster.
func CheckStale(cluster string, entries []Entry, lookup ServiceLookup) []Problem {
	var out []Problem
	for _, e := range entries {
		if !e.Managed || !e.Global() {
			continue
		}
		ns, name, ok := strings.Cut(e.Source, "/")
		if !ok {
			h, err := rules.ParseHost(e.Hosts[0], rules.DefaultSuffix)
			if err != nil {
				continue
			}
			ns, name = h.Namespace, h.Name
		}
		for _, src := range e.Sources() {
			if exists, known := lookup(src, ns, name); known && !exists {
				out = append(out, Problem{Cluster: cluster, Kind: ProblemStaleEntry, Object: "serviceentry " + e.Ref(),
					Message: fmt.Sprintf("source Service %s/%s no longer exists in %s", ns, name, src),
					Fix:     fmt.Sprintf("kubectl mesh unexport %s -n %s --from %s --to %s", name, ns, src, cluster)})
			}
		}
	}
	return out
}

// GatewayAddress is a cluster's gateway as status found it.
type GatewayAddress struct {
	Host string
	Port uint32
}

// CheckGateways finds .global endpoints labelled with a cluster whose
// address or port is no longer that cluster's gateway.
func CheckGateways(cluster string, entries []Entry, gateways map[string]GatewayAddress) []Problem {
	var out []Problem
	for _, e := range entries {
		if !e.Global() {
			continue
		}
		for i, ep := range e.Endpoints {
			src := ep.Labels[rules.ClusterLabel]
			gw, ok := gateways[src]
			if src == "" || !ok {
				continue
			}
			bad := ep.Address != gw.Host
			for _, p := range ep.Ports {
				bad = bad || p != gw.Port
			}
			if bad {
				out = append(out, Problem{Cluster: cluster, Kind: ProblemGatewayMismatch, Object: "serviceentry " + e.Ref(),
					Message: fmt.Sprintf("spec.endpoints[%d] points at %s, but the gateway of %s is %s", i, endpointString(ep), src, net.JoinHostPort(gw.Host, strconv.FormatUint(uint64(gw.Port), 10))),
					Fix:     fmt.Sprintf("run kubectl mesh export again from %s to %s", src, cluster)})
			}
		}
	}
	return out
}

func endpointString(ep Endpoint) string {
	ports := slices.Sorted(maps.Values(ep.Ports))
	ports = slices.Compact(ports)
	if len(ports) == 1 {
		return net.JoinHostPort(ep.Address, strconv.FormatUint(uint64(ports[0]), 10))
	}
	return ep.Address
}

// CheckSubsets finds subsets of .global DestinationRules that select labels
// no endpoint of the host's ServiceEntries carries: they route to nothing.
// The usual cause is selecting pod labels (version: v2) instead of the
// endpoint's cluster label.
func CheckSubsets(cluster string, entries []Entry, drs []DestRule) []Problem {
	var out []Problem
	for _, d := range drs {
		if !rules.HasSuffix(d.Host, rules.DefaultSuffix) {
			continue
		}
		var eps []Endpoint
		for _, e := range entries {
			if slices.Contains(e.Hosts, d.Host) {
				eps = append(eps, e.Endpoints...)
			}
		}
		if len(eps) == 0 {
			continue // no entry for the host: nothing to compare with
		}
		for i, s := range d.Subsets {
			if slices.ContainsFunc(eps, func(ep Endpoint) bool { return rules.SelectorMatches(s.Labels, ep.Labels) }) {
				continue
			}
			out = append(out, Problem{Cluster: cluster, Kind: ProblemSubsetLabels, Object: "destinationrule " + d.Namespace + "/" + d.Name,
				Message: fmt.Sprintf("spec.subsets[%d] (%s) selects %s, which no endpoint of %s carries, so it routes to nothing", i, s.Name, rules.FormatLabels(s.Labels), d.Host),
				Fix:     fmt.Sprintf("select the endpoint label instead, e.g. %s: %s (the remote cluster maps the subset name to pod labels)", rules.ClusterLabel, firstCluster(eps))})
		}
	}
	return out
}

func firstCluster(eps []Endpoint) string {
	for _, ep := range eps {
		if c := ep.Labels[rules.ClusterLabel]; c != "" {
			return c
		}
	}
	return "<cluster>"
}
