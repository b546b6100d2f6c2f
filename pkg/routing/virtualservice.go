package routing

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// DefaultRule names the rule without a match, always the last one.
const DefaultRule = "default"

// Name is the VirtualService route writes for Service name in namespace.
func Name(name, namespace string) string {
	return builders.ServiceEntryName(name, namespace) + "-route"
}

// Destination is where a share of a rule's traffic goes: the local host or
// the `.global` one, a subset ("" for the whole service), a weight.
type Destination struct {
	Host   string
	Subset string
	Weight uint32
}

// Rule is one HTTP route of the VirtualService: a match (nil for the
// default rule) and its destinations.
type Rule struct {
	Match        *Match
	Destinations []Destination
}

// name is the rule's name in the VirtualService: its --when form.
func (r Rule) name() string {
	if r.Match == nil {
		return DefaultRule
	}
	return r.Match.String()
}

func (r Rule) istio() map[string]any {
	route := make([]any, 0, len(r.Destinations))
	for _, d := range r.Destinations {
		dest := map[string]any{"host": d.Host}
		if d.Subset != "" {
			dest["subset"] = d.Subset
		}
		rd := map[string]any{"destination": dest}
		if len(r.Destinations) > 1 {
			rd["weight"] = int64(d.Weight)
		}
		route = append(route, rd)
	}
	out := map[string]any{"name": r.name(), "route": route}
	if r.Match != nil {
		out["match"] = []any{r.Match.istio()}
	}
	return out
}

// Service is the Service a VirtualService routes, under both its names.
type Service struct {
	Name, Namespace string
	Suffix          string // "" means rules.DefaultSuffix
	ClusterDomain   string // "" means rules.DefaultClusterDomain
}

// LocalHost is the Service's name in its own cluster.
func (s Service) LocalHost() string { return rules.LocalHostIn(s.Name, s.Namespace, s.ClusterDomain) }

// GlobalHost is the Service's `.global` name, served by other clusters.
func (s Service) GlobalHost() string { return rules.FormatHost(s.Name, s.Namespace, s.Suffix) }

// VirtualService builds the rule set as a VirtualService for both hosts of
// svc, in svc's namespace. Existing rules of a VirtualService route wrote
// (http, in order) are kept by Merge before.
func VirtualService(svc Service, http []map[string]any) *unstructured.Unstructured {
	routes := make([]any, 0, len(http))
	for _, h := range http {
		routes = append(routes, h)
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": rules.IstioAPIVersion,
		"kind":       rules.KindVirtualService,
		"metadata": map[string]any{
			"name":        Name(svc.Name, svc.Namespace),
			"namespace":   svc.Namespace,
			"labels":      map[string]any{rules.ManagedByLabel: rules.ManagedByValue},
			"annotations": map[string]any{builders.AnnotationExportedFrom: svc.Namespace + "/" + svc.Name},
		},
		"spec": map[string]any{
			"hosts": []any{svc.LocalHost(), svc.GlobalHost()},
			"http":  routes,
		},
	}}
}

// HTTPRules reads the http routes of a VirtualService, in order.
func HTTPRules(vs *unstructured.Unstructured) []map[string]any {
	if vs == nil {
		return nil
	}
	raw, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	out := make([]map[string]any, 0, len(raw))
	for _, r := range raw {
		if m, ok := r.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func nameOf(h map[string]any) string {
	n, _ := h["name"].(string)
	return n
}

// Upsert puts rule into http: in place of the rule of the same name (so
// that a re-run with the same match replaces it), else a matched rule goes
// before the default and the default last; the other rules keep their order.
func Upsert(http []map[string]any, rule Rule) []map[string]any {
	out := slices.Clone(http)
	r := rule.istio()
	if i := slices.IndexFunc(out, func(h map[string]any) bool { return nameOf(h) == rule.name() }); i >= 0 {
		out[i] = r
		return out
	}
	if rule.Match == nil {
		return append(out, r)
	}
	if i := slices.IndexFunc(out, func(h map[string]any) bool { return nameOf(h) == DefaultRule }); i >= 0 {
		return slices.Insert(out, i, r)
	}
	return append(out, r)
}

// Remove drops the rule of match (nil: the default rule); found says
// whether there was one.
func Remove(http []map[string]any, match *Match) (out []map[string]any, found bool) {
	name := Rule{Match: match}.name()
	out = slices.DeleteFunc(slices.Clone(http), func(h map[string]any) bool { return nameOf(h) == name })
	return out, len(out) != len(http)
}

// HasDefault reports whether http has the default rule.
func HasDefault(http []map[string]any) bool {
	return slices.ContainsFunc(http, func(h map[string]any) bool { return nameOf(h) == DefaultRule })
}

// Subsets lists the subsets of host that http routes to, so that the rules
// defining them can be checked.
func Subsets(http []map[string]any, host string) []string {
	var out []string
	for _, h := range http {
		routes, _ := h["route"].([]any)
		for _, r := range routes {
			dest, _, _ := unstructured.NestedMap(r.(map[string]any), "destination")
			if dest["host"] == host {
				if s, _ := dest["subset"].(string); s != "" && !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// Describe is a rule in one line for the command's output.
func (r Rule) Describe() string {
	s := ""
	for i, d := range r.Destinations {
		if i > 0 {
			s += ", "
		}
		s += d.Host
		if d.Subset != "" {
			s += " subset " + d.Subset
		}
		if len(r.Destinations) > 1 {
			s += fmt.Sprintf(" %d%%", d.Weight)
		}
	}
	return r.name() + " → " + s
}
