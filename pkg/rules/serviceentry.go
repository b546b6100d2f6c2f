package rules

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// Annotations kubectl mesh export writes, so that a later export merges into
// an object, unexport removes exactly one source and status tells where an
// entry comes from. Entries written by any version carry these keys.
const (
	// AnnotationSourceClusters lists the source clusters of an entry,
	// comma-separated and sorted.
	AnnotationSourceClusters = "mesh.kubectl-mesh.io/source-clusters"
	// AnnotationSourceVersions maps each source cluster to its versions
	// (JSON), the part of a source an endpoint cannot hold.
	AnnotationSourceVersions = "mesh.kubectl-mesh.io/source-versions"
	// AnnotationExportedFrom is "<namespace>/<service>" of the exported
	// Service.
	AnnotationExportedFrom = "mesh.kubectl-mesh.io/exported-from"
	// AnnotationSourceClusterDomain is the DNS domain of the source
	// clusters when it is not cluster.local: every source of one host
	// shares it, since the remote SNI of the `.global` DestinationRule
	// names it.
	AnnotationSourceClusterDomain = "mesh.kubectl-mesh.io/source-cluster-domain"
	// AnnotationExportedTo lists, on the source cluster's DestinationRule,
	// where the Service is exported to, as <cluster>/<target namespace>;
	// the rule is deleted with the last.
	AnnotationExportedTo = "mesh.kubectl-mesh.io/exported-to"
)

// ServiceEntry is a ServiceEntry as every reader of one sees it: the CLI's
// builders, the webhook's validator, defaulter and index, the VIP repair
// loop and status. It is lenient: a field of the wrong type is left out (and
// its path listed in Skipped), never a panic, so that a hand-edited object
// is still read as far as it makes sense. The validator reports those type
// errors itself, from the raw object.
type ServiceEntry struct {
	Namespace, Name string
	Labels          map[string]string
	Annotations     map[string]string

	Hosts     []string
	Addresses []string
	ExportTo  []string
	Location  string
	// Resolution is as written; "" when unset.
	Resolution string
	// Ports are spec.ports in order, one per object in the list.
	Ports     []Port
	Endpoints []Endpoint

	// Skipped lists the field paths (spec.hosts[1], spec.endpoints[0].ports[http])
	// of values that were not of their type and are left out above.
	Skipped []string
}

// Port is one of spec.ports.
type Port struct {
	Name     string
	Protocol string
	// Number and TargetPort are 0 when absent or not a port number
	// (an integer in 1-65535; 1.5 is not one, nor is "8000").
	Number     uint32
	TargetPort uint32
}

// Endpoint is one of spec.endpoints.
type Endpoint struct {
	Address string
	Labels  map[string]string
	// Ports maps port names to the endpoint's port numbers; a value that is
	// not a port number is left out.
	Ports    map[string]uint32
	Locality string
	Network  string
}

// ReadServiceEntry reads a ServiceEntry object (any of the
// v1alpha3/v1beta1/v1 versions), e.g. an unstructured object's Object map;
// nil reads as the zero ServiceEntry.
func ReadServiceEntry(obj map[string]any) ServiceEntry {
	r := reader{}
	md := r.object(obj, "metadata", "metadata")
	se := ServiceEntry{
		Namespace:   r.str(md, "namespace", "metadata.namespace"),
		Name:        r.str(md, "name", "metadata.name"),
		Labels:      r.strMap(md, "labels", "metadata.labels"),
		Annotations: r.strMap(md, "annotations", "metadata.annotations"),
	}
	spec := r.object(obj, "spec", "spec")
	se.Hosts = r.strList(spec, "hosts", "spec.hosts")
	se.Addresses = r.strList(spec, "addresses", "spec.addresses")
	se.ExportTo = r.strList(spec, "exportTo", "spec.exportTo")
	se.Location = r.str(spec, "location", "spec.location")
	se.Resolution = r.str(spec, "resolution", "spec.resolution")
	for i, raw := range r.list(spec, "ports", "spec.ports") {
		path := "spec.ports[" + strconv.Itoa(i) + "]"
		p, ok := raw.(map[string]any)
		if !ok {
			r.skip(path)
			continue
		}
		se.Ports = append(se.Ports, Port{
			Name:       r.str(p, "name", path+".name"),
			Protocol:   r.str(p, "protocol", path+".protocol"),
			Number:     r.port(p, "number", path+".number"),
			TargetPort: r.port(p, "targetPort", path+".targetPort"),
		})
	}
	for i, raw := range r.list(spec, "endpoints", "spec.endpoints") {
		path := "spec.endpoints[" + strconv.Itoa(i) + "]"
		m, ok := raw.(map[string]any)
		if !ok {
			r.skip(path)
			continue
		}
		se.Endpoints = append(se.Endpoints, r.endpoint(m, path))
	}
	se.Skipped = r.skipped
	return se
}

// reader reads fields leniently and remembers what it skipped.
type reader struct{ skipped []string }

func (r *reader) skip(path string) { r.skipped = append(r.skipped, path) }

// present reports whether m has key with a non-null value.
func present(m map[string]any, key string) bool { return m[key] != nil }

func (r *reader) object(m map[string]any, key, path string) map[string]any {
	o, ok := m[key].(map[string]any)
	if !ok && present(m, key) {
		r.skip(path)
	}
	return o
}

func (r *reader) list(m map[string]any, key, path string) []any {
	l, ok := m[key].([]any)
	if !ok && present(m, key) {
		r.skip(path)
	}
	return l
}

func (r *reader) str(m map[string]any, key, path string) string {
	s, ok := m[key].(string)
	if !ok && present(m, key) {
		r.skip(path)
	}
	return s
}

func (r *reader) strList(m map[string]any, key, path string) []string {
	var out []string
	for i, v := range r.list(m, key, path) {
		if s, ok := v.(string); ok {
			out = append(out, s)
		} else {
			r.skip(path + "[" + strconv.Itoa(i) + "]")
		}
	}
	return out
}

func (r *reader) strMap(m map[string]any, key, path string) map[string]string {
	raw := r.object(m, key, path)
	if raw == nil {
		return nil
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		if s, ok := v.(string); ok {
			out[k] = s
		} else {
			r.skip(path + "[" + k + "]")
		}
	}
	return out
}

func (r *reader) port(m map[string]any, key, path string) uint32 {
	if !present(m, key) {
		return 0
	}
	n, ok := PortNumber(m[key])
	if !ok {
		r.skip(path)
	}
	return n
}

func (r *reader) endpoint(m map[string]any, path string) Endpoint {
	ep := Endpoint{
		Address:  r.str(m, "address", path+".address"),
		Labels:   r.strMap(m, "labels", path+".labels"),
		Locality: r.str(m, "locality", path+".locality"),
		Network:  r.str(m, "network", path+".network"),
	}
	if raw := r.object(m, "ports", path+".ports"); raw != nil {
		ep.Ports = make(map[string]uint32, len(raw))
		for k, v := range raw {
			if n, ok := PortNumber(v); ok {
				ep.Ports[k] = n
			} else {
				r.skip(path + ".ports[" + k + "]")
			}
		}
	}
	return ep
}

// Applies reports whether the `.global` rules apply to the ServiceEntry
// object obj, as ServiceEntry.Applies does, reading only its hosts: a
// handler asks before it knows that the object is small enough to read.
func Applies(obj map[string]any, suffix string) bool {
	r := reader{}
	return ServiceEntry{Hosts: r.strList(r.object(obj, "spec", "spec"), "hosts", "spec.hosts")}.Applies(suffix)
}

// String is "namespace/name".
func (se ServiceEntry) String() string { return se.Namespace + "/" + se.Name }

// Managed reports whether kubectl-mesh wrote the entry.
func (se ServiceEntry) Managed() bool { return IsManaged(se.Labels) }

// Applies reports whether the `.global` rules apply to the entry: at least
// one of its hosts is under suffix. Other ServiceEntries are never touched.
func (se ServiceEntry) Applies(suffix string) bool {
	return slices.ContainsFunc(se.Hosts, func(h string) bool { return HasSuffix(h, suffix) })
}

// GlobalHost returns the single valid `.global` host of the entry, or ""
// when there is none or the hosts break the host rules (more than one host,
// or one that is not a string, included).
func (se ServiceEntry) GlobalHost(suffix string) string {
	if len(se.Hosts) != 1 || se.SkippedAt("spec.hosts") {
		return ""
	}
	if _, err := ParseHost(se.Hosts[0], suffix); err != nil {
		return ""
	}
	return se.Hosts[0]
}

// SkippedAt reports whether the value at path, or one inside it, was of the
// wrong type and left out: spec.addresses is then not empty, only unread.
func (se ServiceEntry) SkippedAt(path string) bool {
	return slices.ContainsFunc(se.Skipped, func(p string) bool {
		return p == path || strings.HasPrefix(p, path+"[") || strings.HasPrefix(p, path+".")
	})
}

// PortNames are the non-empty names of spec.ports, in order.
func (se ServiceEntry) PortNames() []string {
	var out []string
	for _, p := range se.Ports {
		if p.Name != "" {
			out = append(out, p.Name)
		}
	}
	return out
}

// PortNumbers are the port numbers of spec.ports, in order, without the
// ports that have none.
func (se ServiceEntry) PortNumbers() []uint32 {
	var out []uint32
	for _, p := range se.Ports {
		if p.Number != 0 {
			out = append(out, p.Number)
		}
	}
	return out
}

// SourceClusters is the source-clusters annotation, split.
func (se ServiceEntry) SourceClusters() []string {
	var out []string
	for c := range strings.SplitSeq(se.Annotations[AnnotationSourceClusters], ",") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// SourceVersions is the source-versions annotation: versions by source
// cluster. A hand-edited annotation that is not such JSON reads as none:
// it only loses the versions, never an endpoint.
func (se ServiceEntry) SourceVersions() map[string][]string {
	versions := map[string][]string{}
	if s := se.Annotations[AnnotationSourceVersions]; s != "" {
		if err := json.Unmarshal([]byte(s), &versions); err != nil {
			return map[string][]string{}
		}
	}
	return versions
}

// ExportedFrom is "<namespace>/<service>" of the exported Service, or "".
func (se ServiceEntry) ExportedFrom() string { return se.Annotations[AnnotationExportedFrom] }

// ClusterDomain is the DNS domain of the entry's source clusters: the
// annotation export writes when it is not cluster.local, else
// DefaultClusterDomain (also for entries of older versions, which only
// knew cluster.local).
func (se ServiceEntry) ClusterDomain() string {
	if d := se.Annotations[AnnotationSourceClusterDomain]; d != "" {
		return d
	}
	return DefaultClusterDomain
}

// Entry is what the DestinationRule rules need of the entry.
func (se ServiceEntry) Entry() Entry {
	e := Entry{
		Namespace: se.Namespace, Name: se.Name,
		Ports:         se.PortNumbers(),
		ClusterDomain: se.Annotations[AnnotationSourceClusterDomain],
	}
	if len(se.Hosts) == 1 {
		e.Host = se.Hosts[0]
	}
	for _, ep := range se.Endpoints {
		l := ep.Labels
		if l == nil {
			l = map[string]string{}
		}
		e.EndpointLabels = append(e.EndpointLabels, l)
	}
	return e
}
