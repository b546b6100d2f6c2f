package rules

import (
	"maps"
	"slices"
	"strings"
)

// TLSModeIstioMutual is the only TLS mode a `.global` host is reached
// with: the remote gateway passes the sidecar's mTLS through to the
// service, which shares the mesh's root of trust.
const TLSModeIstioMutual = "ISTIO_MUTUAL"

// Entry is what the DestinationRule rules of a `.global` host need to know
// of the ServiceEntry that defines the host.
type Entry struct {
	Namespace, Name string
	// Host is the entry's `.global` host, e.g. httpbin.bar.global.
	Host string
	// Ports are the entry's port numbers, in spec order.
	Ports []uint32
	// EndpointLabels are the labels of each endpoint, in spec order.
	EndpointLabels []map[string]string
	// ClusterDomain is the source clusters' DNS domain (cluster.local
	// unless the entry says otherwise).
	ClusterDomain string
}

// String is "namespace/name".
func (e Entry) String() string { return e.Namespace + "/" + e.Name }

// Selects reports whether some endpoint of e carries every label of sel.
func (e Entry) Selects(sel map[string]string) bool {
	return slices.ContainsFunc(e.EndpointLabels, func(l map[string]string) bool { return SelectorMatches(sel, l) })
}

// SelectorMatches reports whether labels carry every label of sel, as a
// DestinationRule subset or a Gateway selector matches; an empty selector
// matches everything.
func SelectorMatches(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// FormatLabels formats labels as YAML's flow form, keys sorted:
// {cluster: cluster2, version: v2}.
func FormatLabels(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+": "+m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// Carries reports whether some endpoint of e has the label key.
func (e Entry) Carries(key string) bool {
	for _, l := range e.EndpointLabels {
		if _, ok := l[key]; ok {
			return true
		}
	}
	return false
}

// ClusterLabels lists the distinct cluster label values of e's endpoints,
// sorted: the labels a `.global` subset may select.
func (e Entry) ClusterLabels() []string {
	set := map[string]bool{}
	for _, l := range e.EndpointLabels {
		if c := l[ClusterLabel]; c != "" {
			set[c] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Domain is ClusterDomain, or DefaultClusterDomain when unset.
func (e Entry) Domain() string {
	if e.ClusterDomain == "" {
		return DefaultClusterDomain
	}
	return e.ClusterDomain
}

// Visible reports whether a config in namespace ns with exportTo list
// exportTo can be seen from namespace from, the way Istio reads exportTo:
// empty or "*" is every namespace, "." the config's own, "~" none, any
// other value that namespace.
func Visible(ns string, exportTo []string, from string) bool {
	if len(exportTo) == 0 {
		return true
	}
	for _, e := range exportTo {
		switch e {
		case "*":
			return true
		case ".":
			if from == ns {
				return true
			}
		case "~":
		default:
			if e == from {
				return true
			}
		}
	}
	return false
}

// VisibleTogether reports whether two configs (namespace and exportTo each)
// are both visible from at least one namespace: then a sidecar there sees
// both, and for one host only one of them can win.
func VisibleTogether(nsA string, exportA []string, nsB string, exportB []string) bool {
	everywhere := func(ex []string) bool { return len(ex) == 0 || slices.Contains(ex, "*") }
	named := func(ns string, ex []string) []string {
		var out []string
		for _, e := range ex {
			switch e {
			case ".":
				out = append(out, ns)
			case "*", "~":
			default:
				out = append(out, strings.TrimSpace(e))
			}
		}
		return out
	}
	switch {
	case everywhere(exportA) && everywhere(exportB):
		return true
	case everywhere(exportA):
		return len(named(nsB, exportB)) > 0
	case everywhere(exportB):
		return len(named(nsA, exportA)) > 0
	}
	for _, n := range named(nsA, exportA) {
		if slices.Contains(named(nsB, exportB), n) {
			return true
		}
	}
	return false
}
