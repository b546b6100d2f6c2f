package builders

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// view reads se through the one ServiceEntry view; nil reads as empty.
func view(se *unstructured.Unstructured) rules.ServiceEntry {
	if se == nil {
		return rules.ServiceEntry{}
	}
	return rules.ReadServiceEntry(se.Object)
}

// SourcesOf reads the source clusters back from an entry export wrote: one
// per endpoint with a cluster label (the egress gateway's endpoint has
// none), with its versions from the source-versions annotation.
func SourcesOf(se *unstructured.Unstructured) []Source {
	v := view(se)
	versions := v.SourceVersions()
	var out []Source
	for _, ep := range v.Endpoints {
		cluster := ep.Labels[rules.ClusterLabel]
		if cluster == "" || ep.Address == "" {
			continue
		}
		s := Source{Cluster: cluster, GatewayHost: ep.Address, GatewayPort: rules.GatewayPort, Versions: versions[cluster], Locality: ep.Locality}
		// Every port maps to the same gateway port; the first name decides.
		if names := slices.Sorted(maps.Keys(ep.Ports)); len(names) > 0 {
			s.GatewayPort = ep.Ports[names[0]]
		}
		out = append(out, s)
	}
	return out
}

// ClusterDomainOf returns the DNS domain of an entry's source clusters:
// the annotation export writes when it is not cluster.local, else
// rules.DefaultClusterDomain (also for entries of older versions, which
// only knew cluster.local).
func ClusterDomainOf(se *unstructured.Unstructured) string { return view(se).ClusterDomain() }

// AnnotationOf is the value of annotation key of u; "" when u is nil (an
// object not there yet) or has none.
func AnnotationOf(u *unstructured.Unstructured, key string) string {
	if u == nil {
		return ""
	}
	return u.GetAnnotations()[key]
}

// Addresses returns an entry's spec.addresses.
func Addresses(se *unstructured.Unstructured) []string { return view(se).Addresses }

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

// PortsOf reads an entry's ports back; a port without a number (or with
// one that is not a port number) has Number 0.
func PortsOf(se *unstructured.Unstructured) []Port {
	var out []Port
	for _, p := range view(se).Ports {
		out = append(out, Port{Name: p.Name, Number: int32(p.Number), Protocol: p.Protocol}) //nolint:gosec // a port number, at most 65535
	}
	return out
}

// EgressAddressOf returns the local egress gateway endpoint of an entry of
// the egress variant (the endpoint without a cluster label), or "".
func EgressAddressOf(se *unstructured.Unstructured) string {
	v := view(se)
	if v.Resolution != rules.ResolutionStatic {
		return ""
	}
	for _, ep := range v.Endpoints {
		if ep.Labels[rules.ClusterLabel] == "" {
			return ep.Address
		}
	}
	return ""
}
