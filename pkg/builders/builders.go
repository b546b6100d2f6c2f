// Package builders owns the objects `kubectl mesh export` writes, as pure
// functions: a Service's ports, its versions per source cluster and the
// source gateways in, the `.global` ServiceEntry, the `.global`
// DestinationRule of a calling cluster and the version DestinationRule of
// the source cluster out, as unstructured objects ready for server-side
// apply. It also reads those objects back (SourcesOf, through pkg/rules'
// ServiceEntry view), so that a second source cluster is merged into an
// entry instead of replacing it.
package builders

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// Annotations recording where an exported object comes from, so that a
// later export merges into it and unexport removes exactly one source;
// pkg/rules declares them, for every reader of the objects.
const (
	AnnotationSourceClusters      = rules.AnnotationSourceClusters
	AnnotationSourceVersions      = rules.AnnotationSourceVersions
	AnnotationExportedFrom        = rules.AnnotationExportedFrom
	AnnotationSourceClusterDomain = rules.AnnotationSourceClusterDomain
	AnnotationExportedTo          = rules.AnnotationExportedTo
)

// DefaultVersionLabel is the Pod label whose values are a Service's versions.
const DefaultVersionLabel = "version"

// TLSModeIstioMutual is the TLS mode of every DestinationRule export
// writes: the gateways' 15443 listeners only accept Istio mTLS.
const TLSModeIstioMutual = rules.TLSModeIstioMutual

// ServiceEntryName is the name of the entry for Service name in namespace
// (e.g. httpbin-bar), unique per target namespace even when services of
// several source namespaces are exported into one.
func ServiceEntryName(name, namespace string) string { return name + "-" + namespace }

// GlobalDestinationRuleName is the name of the `.global` DestinationRule.
func GlobalDestinationRuleName(name, namespace string) string {
	return ServiceEntryName(name, namespace) + "-global"
}

// LocalDestinationRuleName is the name of the source cluster's version
// DestinationRule.
func LocalDestinationRuleName(name, namespace string) string {
	return ServiceEntryName(name, namespace) + "-local"
}

// Port is one port of an exported Service.
type Port struct {
	Name     string
	Number   int32
	Protocol string
}

// PortsFor turns a Service's ports into ServiceEntry ports, with the Istio
// protocol from appProtocol or the port name. An unnamed port (allowed on a
// single-port Service) is named "<protocol>-<number>", because endpoint
// ports refer to service ports by name. UDP and SCTP ports cannot cross a
// gateway's TLS listener and are an error.
func PortsFor(svc *corev1.Service) ([]Port, error) {
	if len(svc.Spec.Ports) == 0 {
		return nil, fmt.Errorf("service %s/%s has no ports; a ServiceEntry needs at least one", svc.Namespace, svc.Name)
	}
	ports := make([]Port, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			return nil, fmt.Errorf("service %s/%s port %q is %s; only TCP ports can cross the gateway (port %d is TLS over TCP)", svc.Namespace, svc.Name, p.Name, p.Protocol, rules.GatewayPort)
		}
		appProtocol := ""
		if p.AppProtocol != nil {
			appProtocol = *p.AppProtocol
		}
		proto := rules.ProtocolFor(p.Name, appProtocol)
		name := p.Name
		if name == "" {
			name = fmt.Sprintf("%s-%d", strings.ToLower(proto), p.Port)
		}
		ports = append(ports, Port{Name: name, Number: p.Port, Protocol: proto})
	}
	return ports, nil
}

// Source is one source cluster of an export: where its gateway is and which
// versions of the Service run there.
type Source struct {
	Cluster     string // the value of the endpoint's cluster label
	GatewayHost string // IP or DNS name
	GatewayPort uint32 // 15443, or a node port
	Versions    []string
	// Locality is region[/zone] of the source's gateway, written on its
	// endpoint so that Istio's locality load balancing can tell sources
	// apart; "" leaves it out.
	Locality string
}

// Export is everything the `.global` objects of one Service are built from.
type Export struct {
	Name            string // the Service
	Namespace       string // the Service's namespace in the source clusters
	Suffix          string // "" means rules.DefaultSuffix
	TargetNamespace string // where the entry and its rule go; "" means Namespace
	Ports           []Port
	Sources         []Source
	// VIP is the entry's address; empty leaves addresses out (for a
	// client-side dry run, or for mesh-webhook to fill in).
	VIP string
	// ClusterDomain is the DNS domain of the source clusters; "" means
	// rules.DefaultClusterDomain.
	ClusterDomain string
	// Locality is the locality load balancing `kubectl mesh route` set on
	// the `.global` rule; nil for none.
	Locality *LocalityPolicy
	// EgressAddress, when set, selects the egress-gateway variant: the
	// local egress gateway's ClusterIP becomes an endpoint and the remote
	// gateways are put on the external network.
	EgressAddress string
}

// Host is the entry's `.global` host.
func (e Export) Host() rules.Host {
	suffix := e.Suffix
	if suffix == "" {
		suffix = rules.DefaultSuffix
	}
	return rules.Host{Name: e.Name, Namespace: e.Namespace, Suffix: suffix}
}

func (e Export) targetNamespace() string {
	if e.TargetNamespace != "" {
		return e.TargetNamespace
	}
	return e.Namespace
}

func (e Export) sortedSources() []Source {
	s := slices.Clone(e.Sources)
	slices.SortFunc(s, func(a, b Source) int { return cmp.Compare(a.Cluster, b.Cluster) })
	return s
}

// Validate checks what the builders cannot repair: a valid host, at least
// one port and one source, distinct source clusters, and for the egress
// variant IP addresses (STATIC resolution resolves nothing).
func (e Export) Validate() error {
	if _, err := rules.ParseHost(e.Host().String(), e.Host().Suffix); err != nil {
		return err
	}
	if len(e.Ports) == 0 {
		return fmt.Errorf("service %s/%s: no ports to export", e.Namespace, e.Name)
	}
	if len(e.Sources) == 0 {
		return fmt.Errorf("service %s/%s: no source cluster", e.Namespace, e.Name)
	}
	seen := map[string]bool{}
	for _, s := range e.Sources {
		if s.Cluster == "" || s.GatewayHost == "" || s.GatewayPort == 0 {
			return fmt.Errorf("service %s/%s: source %q lacks a cluster name or gateway address", e.Namespace, e.Name, s.Cluster)
		}
		if seen[s.Cluster] {
			return fmt.Errorf("service %s/%s: source cluster %q appears twice", e.Namespace, e.Name, s.Cluster)
		}
		seen[s.Cluster] = true
		if e.EgressAddress != "" {
			if _, err := netip.ParseAddr(s.GatewayHost); err != nil {
				return fmt.Errorf("--via-egress needs an IP address for the gateway of cluster %s, which is the host name %q (the egress variant uses STATIC resolution); pass --gateway-address with an IP, or export without --via-egress", s.Cluster, s.GatewayHost)
			}
		}
	}
	if e.EgressAddress != "" {
		if _, err := netip.ParseAddr(e.EgressAddress); err != nil {
			return fmt.Errorf("egress gateway address %q is not an IP address; check the egress gateway Service's ClusterIP", e.EgressAddress)
		}
	}
	if e.VIP != "" {
		if _, err := netip.ParseAddr(e.VIP); err != nil {
			return fmt.Errorf("VIP %q is not an IP address", e.VIP)
		}
	}
	if e.ClusterDomain != "" {
		if err := rules.ValidateClusterDomain(e.ClusterDomain); err != nil {
			return err
		}
	}
	if e.Locality != nil {
		if err := e.Locality.Validate(); err != nil {
			return err
		}
	}
	return nil
}

func (e Export) clusterDomain() string {
	if e.ClusterDomain == "" {
		return rules.DefaultClusterDomain
	}
	return e.ClusterDomain
}

// SNI is the server name a caller sends for port and subset ("" for the
// whole service) of e: the source cluster's own name of the Service, which
// the source gateway's AUTO_PASSTHROUGH server routes (DESIGN §1.9).
func (e Export) SNI(port int32, subset string) string {
	return rules.RemoteSNI(uint32(port), subset, e.Name, e.Namespace, e.clusterDomain()) //nolint:gosec // a port number
}

func meta(kind, name, namespace string, annotations map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": rules.IstioAPIVersion,
		"kind":       kind,
		"metadata": map[string]any{
			"name":      name,
			"namespace": namespace,
			"labels":    map[string]any{rules.ManagedByLabel: rules.ManagedByValue},
		},
	}}
	if len(annotations) > 0 {
		a := map[string]any{}
		for k, v := range annotations {
			a[k] = v
		}
		u.Object["metadata"].(map[string]any)["annotations"] = a
	}
	return u
}

// ServiceEntry builds the `.global` ServiceEntry of e: MESH_INTERNAL, DNS
// (STATIC in the egress variant), the Service's ports, one endpoint per
// source cluster whose every port maps to that cluster's gateway port.
func ServiceEntry(e Export) (*unstructured.Unstructured, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	sources := e.sortedSources()
	clusters := make([]string, 0, len(sources))
	versions := map[string][]string{}
	for _, s := range sources {
		clusters = append(clusters, s.Cluster)
		versions[s.Cluster] = sortedUnique(s.Versions)
	}
	versionsJSON, err := json.Marshal(versions)
	if err != nil {
		return nil, err
	}
	annotations := map[string]string{
		AnnotationExportedFrom:   e.Namespace + "/" + e.Name,
		AnnotationSourceClusters: strings.Join(clusters, ","),
		AnnotationSourceVersions: string(versionsJSON),
	}
	if e.clusterDomain() != rules.DefaultClusterDomain {
		annotations[AnnotationSourceClusterDomain] = e.clusterDomain()
	}
	u := meta(rules.KindServiceEntry, ServiceEntryName(e.Name, e.Namespace), e.targetNamespace(), annotations)
	ports := make([]any, 0, len(e.Ports))
	for _, p := range e.Ports {
		ports = append(ports, map[string]any{"name": p.Name, "number": int64(p.Number), "protocol": p.Protocol})
	}
	endpointPorts := func(port uint32) map[string]any {
		m := map[string]any{}
		for _, p := range e.Ports {
			m[p.Name] = int64(port)
		}
		return m
	}
	endpoints := make([]any, 0, len(sources)+1)
	for _, s := range sources {
		ep := map[string]any{
			"address": s.GatewayHost,
			"labels":  map[string]any{rules.ClusterLabel: s.Cluster},
			"ports":   endpointPorts(s.GatewayPort),
		}
		if s.Locality != "" {
			ep["locality"] = s.Locality
		}
		if e.EgressAddress != "" {
			ep["network"] = rules.ExternalNetwork
		}
		endpoints = append(endpoints, ep)
	}
	resolution := rules.ResolutionDNS
	if e.EgressAddress != "" {
		resolution = rules.ResolutionStatic
		endpoints = append(endpoints, map[string]any{
			"address": e.EgressAddress,
			"ports":   endpointPorts(rules.GatewayPort),
		})
	}
	spec := map[string]any{
		"hosts":      []any{e.Host().String()},
		"location":   rules.LocationMeshInternal,
		"resolution": resolution,
		"ports":      ports,
		"endpoints":  endpoints,
	}
	if e.VIP != "" {
		spec["addresses"] = []any{e.VIP}
	}
	u.Object["spec"] = spec
	return u, nil
}

// GlobalDestinationRule builds the calling cluster's DestinationRule for the
// `.global` host: ISTIO_MUTUAL with the remote SNI per port, and one subset
// per remote version with its own remote SNI per port.
//
// The SNI is what makes the request land: the source gateway's
// AUTO_PASSTHROUGH server only has filter chains for the SNIs of its own
// cluster's services (outbound_.<port>_.<subset>_.<name>.<ns>.svc.<domain>),
// and pilot's default SNI would name the `.global` host, which no service
// of the source cluster has. Port-level settings replace the rule's
// top-level tls for their port (they do not inherit), so each carries the
// mode as well.
//
// Subsets select the endpoint's cluster label, never pod labels: the subset
// name travels in the SNI and the source cluster's own rule maps it to
// pods. A version every source runs selects all endpoints; a version only
// some of several sources run selects the first of them, with a warning.
func GlobalDestinationRule(e Export) (*unstructured.Unstructured, []string, error) {
	if err := e.Validate(); err != nil {
		return nil, nil, err
	}
	sources := e.sortedSources()
	holders := map[string][]string{}
	for _, s := range sources {
		for _, v := range sortedUnique(s.Versions) {
			holders[v] = append(holders[v], s.Cluster)
		}
	}
	names := make([]string, 0, len(holders))
	for v := range holders {
		names = append(names, v)
	}
	slices.Sort(names)
	var warnings []string
	subsets := make([]any, 0, len(names))
	for _, v := range names {
		subset := map[string]any{"name": v, "trafficPolicy": map[string]any{"portLevelSettings": e.portTLS(v)}}
		if e.Locality != nil {
			// The subset's port-level settings replace the rule's locality
			// settings too: they have to carry them.
			subset["trafficPolicy"] = withLocality(subset["trafficPolicy"].(map[string]any), e.Locality)
		}
		switch hs := holders[v]; {
		case len(hs) == 1:
			subset["labels"] = map[string]any{rules.ClusterLabel: hs[0]}
		case len(hs) == len(sources):
			// Every endpoint leads to a cluster that runs v.
		default:
			subset["labels"] = map[string]any{rules.ClusterLabel: hs[0]}
			warnings = append(warnings, fmt.Sprintf("version %s of %s runs in clusters %s but not in every source; subset %s selects only %s (a subset selects one endpoint label value)", v, e.Host(), strings.Join(hs, ", "), v, hs[0]))
		}
		subsets = append(subsets, subset)
	}
	u := meta(rules.KindDestinationRule, GlobalDestinationRuleName(e.Name, e.Namespace), e.targetNamespace(), map[string]string{
		AnnotationExportedFrom: e.Namespace + "/" + e.Name,
	})
	spec := map[string]any{
		"host": e.Host().String(),
		"trafficPolicy": withLocality(map[string]any{
			"tls":               map[string]any{"mode": TLSModeIstioMutual},
			"portLevelSettings": e.portTLS(""),
		}, e.Locality),
	}
	if len(subsets) > 0 {
		spec["subsets"] = subsets
	}
	u.Object["spec"] = spec
	annotate(u, e.Locality)
	return u, warnings, nil
}

// portTLS is one port-level setting per port of e: ISTIO_MUTUAL with the
// remote SNI of subset.
func (e Export) portTLS(subset string) []any {
	out := make([]any, 0, len(e.Ports))
	for _, p := range e.Ports {
		out = append(out, withLocality(map[string]any{
			"port": map[string]any{"number": int64(p.Number)},
			"tls":  map[string]any{"mode": TLSModeIstioMutual, "sni": e.SNI(p.Number, subset)},
		}, e.Locality))
	}
	return out
}

// RequiredSNIs lists, for a DestinationRule of e's `.global` host that
// kubectl-mesh does not own, what it must carry for requests to land: per
// port, and per subset and port, ISTIO_MUTUAL with the SNI given.
func RequiredSNIs(e Export) []string {
	versions := map[string]bool{}
	for _, s := range e.Sources {
		for _, v := range s.Versions {
			versions[v] = v != ""
		}
	}
	var out []string
	for _, p := range e.Ports {
		out = append(out, fmt.Sprintf("port %d: tls.sni %s", p.Number, e.SNI(p.Number, "")))
	}
	for _, v := range slices.Sorted(maps.Keys(versions)) {
		if !versions[v] {
			continue
		}
		for _, p := range e.Ports {
			out = append(out, fmt.Sprintf("subset %s port %d: tls.sni %s", v, p.Number, e.SNI(p.Number, v)))
		}
	}
	return out
}

// Local is the source cluster's DestinationRule input: the Service, its
// versions there and the clusters it is exported to.
type Local struct {
	Name, Namespace string
	ClusterDomain   string // "" means rules.DefaultClusterDomain
	VersionLabel    string // "" means DefaultVersionLabel
	Versions        []string
	ExportedTo      []string
	// Locality is the locality load balancing `kubectl mesh route` set on
	// the local host; nil for none.
	Locality *LocalityPolicy
}

// LocalHost is the in-cluster host the remote SNI names.
func (l Local) LocalHost() string {
	return rules.LocalHostIn(l.Name, l.Namespace, l.ClusterDomain)
}

// LocalDestinationRule builds the source cluster's DestinationRule for
// `<name>.<namespace>.svc.cluster.local`: one subset per version, selecting
// the pods' version label, so that a subset name arriving in the SNI from a
// remote caller reaches the right pods.
func LocalDestinationRule(l Local) *unstructured.Unstructured {
	label := l.VersionLabel
	if label == "" {
		label = DefaultVersionLabel
	}
	u := meta(rules.KindDestinationRule, LocalDestinationRuleName(l.Name, l.Namespace), l.Namespace, map[string]string{
		AnnotationExportedFrom: l.Namespace + "/" + l.Name,
		AnnotationExportedTo:   strings.Join(sortedUnique(l.ExportedTo), ","),
	})
	subsets := []any{}
	for _, v := range sortedUnique(l.Versions) {
		subsets = append(subsets, map[string]any{"name": v, "labels": map[string]any{label: v}})
	}
	spec := map[string]any{
		"host":          l.LocalHost(),
		"trafficPolicy": withLocality(map[string]any{"tls": map[string]any{"mode": TLSModeIstioMutual}}, l.Locality),
	}
	if len(subsets) > 0 {
		spec["subsets"] = subsets
	}
	u.Object["spec"] = spec
	annotate(u, l.Locality)
	return u
}

func sortedUnique(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s != "" {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// SplitList parses a comma-separated annotation value; empty items are
// dropped.
func SplitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
