package builders

import (
	"encoding/json"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// IsManaged reports whether kubectl-mesh wrote obj; only such objects are
// ever changed or deleted.
func IsManaged(obj *unstructured.Unstructured) bool {
	return obj != nil && obj.GetLabels()[rules.ManagedByLabel] == rules.ManagedByValue
}

// SourcesOf reads the source clusters back from an entry export wrote: one
// per endpoint with a cluster label (the egress gateway's endpoint has
// none), with its versions from the source-versions annotation.
func SourcesOf(se *unstructured.Unstructured) []Source {
	if se == nil {
		return nil
	}
	versions := map[string][]string{}
	if s := se.GetAnnotations()[AnnotationSourceVersions]; s != "" {
		// A hand-edited annotation only loses the versions, never an
		// endpoint.
		_ = json.Unmarshal([]byte(s), &versions)
	}
	endpoints, _, _ := unstructured.NestedSlice(se.Object, "spec", "endpoints")
	var out []Source
	for _, raw := range endpoints {
		ep, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		cluster, _, _ := unstructured.NestedString(ep, "labels", rules.ClusterLabel)
		address, _, _ := unstructured.NestedString(ep, "address")
		if cluster == "" || address == "" {
			continue
		}
		locality, _, _ := unstructured.NestedString(ep, "locality")
		s := Source{Cluster: cluster, GatewayHost: address, GatewayPort: rules.GatewayPort, Versions: versions[cluster], Locality: locality}
		ports, _, _ := unstructured.NestedMap(ep, "ports")
		for _, k := range slices.Sorted(maps.Keys(ports)) {
			if n, ok := rules.Integer(ports[k]); ok && n > 0 {
				s.GatewayPort = uint32(n) //nolint:gosec // checked positive; ports are below 2^16
				break
			}
		}
		out = append(out, s)
	}
	return out
}

// ClusterDomainOf returns the DNS domain of an entry's source clusters:
// the annotation export writes when it is not cluster.local, else
// rules.DefaultClusterDomain (also for entries of older versions, which
// only knew cluster.local).
func ClusterDomainOf(se *unstructured.Unstructured) string {
	if d := annotationOf(se, AnnotationSourceClusterDomain); d != "" {
		return d
	}
	return rules.DefaultClusterDomain
}

func annotationOf(u *unstructured.Unstructured, key string) string {
	if u == nil {
		return ""
	}
	return u.GetAnnotations()[key]
}

// Addresses returns an entry's spec.addresses.
func Addresses(se *unstructured.Unstructured) []string {
	if se == nil {
		return nil
	}
	a, _, _ := unstructured.NestedStringSlice(se.Object, "spec", "addresses")
	return a
}

// MergeSource puts s into sources, replacing the source of the same cluster
// and keeping every other.
func MergeSource(sources []Source, s Source) []Source {
	out := make([]Source, 0, len(sources)+1)
	for _, old := range sources {
		if old.Cluster != s.Cluster {
			out = append(out, old)
		}
	}
	return append(out, s)
}

// RemoveSource drops the source of cluster.
func RemoveSource(sources []Source, cluster string) []Source {
	return slices.DeleteFunc(slices.Clone(sources), func(s Source) bool { return s.Cluster == cluster })
}

// HostOf returns a DestinationRule's spec.host.
func HostOf(dr *unstructured.Unstructured) string {
	if dr == nil {
		return ""
	}
	h, _, _ := unstructured.NestedString(dr.Object, "spec", "host")
	return h
}

// SubsetNames returns a DestinationRule's subset names.
func SubsetNames(dr *unstructured.Unstructured) []string {
	if dr == nil {
		return nil
	}
	subsets, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
	var names []string
	for _, raw := range subsets {
		if m, ok := raw.(map[string]any); ok {
			if n, ok := m["name"].(string); ok {
				names = append(names, n)
			}
		}
	}
	return names
}

// SelectsHost reports whether a DestinationRule in namespace applies to the
// Service name.namespace of a cluster.local cluster; see SelectsLocalHost.
func SelectsHost(dr *unstructured.Unstructured, name, namespace string) bool {
	return SelectsLocalHost(dr, name, namespace, "")
}

// SelectsLocalHost reports whether a DestinationRule applies to the Service
// name.namespace of a cluster with DNS domain ("" means cluster.local):
// its host is the Service's short name (resolved in the rule's namespace),
// name.namespace, or the fully qualified local host.
func SelectsLocalHost(dr *unstructured.Unstructured, name, namespace, domain string) bool {
	full := rules.LocalHostIn(name, namespace, domain)
	switch h := HostOf(dr); h {
	case full, name + "." + namespace, name + "." + namespace + ".svc":
		return true
	case name:
		return dr.GetNamespace() == namespace
	}
	return false
}

// Versions finds the versions of svc: the distinct values of versionLabel
// on the Pods it selects. EndpointSlices of the Service, when there are any,
// say which Pods those are (including Pods of a selector-less Service);
// otherwise the Service's selector picks them.
func Versions(svc *corev1.Service, pods []corev1.Pod, endpointSlices []discoveryv1.EndpointSlice, versionLabel string) []string {
	if versionLabel == "" {
		versionLabel = DefaultVersionLabel
	}
	byName := map[string]*corev1.Pod{}
	for i := range pods {
		if pods[i].Namespace == svc.Namespace {
			byName[pods[i].Name] = &pods[i]
		}
	}
	var selected []*corev1.Pod
	fromSlices := false
	for _, es := range endpointSlices {
		if es.Namespace != svc.Namespace || es.Labels[discoveryv1.LabelServiceName] != svc.Name {
			continue
		}
		fromSlices = true
		for _, ep := range es.Endpoints {
			if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
				continue
			}
			if p, ok := byName[ep.TargetRef.Name]; ok {
				selected = append(selected, p)
			}
		}
	}
	if !fromSlices && len(svc.Spec.Selector) > 0 {
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		for i := range pods {
			if pods[i].Namespace == svc.Namespace && sel.Matches(labels.Set(pods[i].Labels)) {
				selected = append(selected, &pods[i])
			}
		}
	}
	var versions []string
	for _, p := range selected {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if v := p.Labels[versionLabel]; v != "" {
			versions = append(versions, v)
		}
	}
	return sortedUnique(versions)
}

// PortsOf reads an entry's ports back.
func PortsOf(se *unstructured.Unstructured) []Port {
	raw, _, _ := unstructured.NestedSlice(se.Object, "spec", "ports")
	var out []Port
	for _, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		p := Port{}
		p.Name, _ = m["name"].(string)
		p.Protocol, _ = m["protocol"].(string)
		if n, ok := rules.Integer(m["number"]); ok {
			p.Number = int32(n) //nolint:gosec // a port number
		}
		out = append(out, p)
	}
	return out
}

// EgressAddressOf returns the local egress gateway endpoint of an entry of
// the egress variant (the endpoint without a cluster label), or "".
func EgressAddressOf(se *unstructured.Unstructured) string {
	if r, _, _ := unstructured.NestedString(se.Object, "spec", "resolution"); r != rules.ResolutionStatic {
		return ""
	}
	endpoints, _, _ := unstructured.NestedSlice(se.Object, "spec", "endpoints")
	for _, raw := range endpoints {
		ep, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		if c, _, _ := unstructured.NestedString(ep, "labels", rules.ClusterLabel); c == "" {
			a, _, _ := unstructured.NestedString(ep, "address")
			return a
		}
	}
	return ""
}
