package rules

import (
	"reflect"
	"slices"
	"testing"

	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

const seedEntry = `{
  "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
  "metadata": {"name": "httpbin-bar", "namespace": "foo",
    "labels": {"app.kubernetes.io/managed-by": "kubectl-mesh"},
    "annotations": {
      "mesh.kubectl-mesh.io/exported-from": "bar/httpbin",
      "mesh.kubectl-mesh.io/source-clusters": "cluster2, cluster3",
      "mesh.kubectl-mesh.io/source-versions": "{\"cluster2\":[\"v1\"],\"cluster3\":[\"v1\",\"v2\"]}",
      "mesh.kubectl-mesh.io/source-cluster-domain": "east.local"}},
  "spec": {
    "hosts": ["httpbin.bar.global"], "addresses": ["240.0.0.2"], "exportTo": ["."],
    "location": "MESH_INTERNAL", "resolution": "DNS",
    "ports": [{"name": "http1", "number": 8000, "protocol": "HTTP", "targetPort": 8080}],
    "endpoints": [
      {"address": "203.0.113.7", "labels": {"cluster": "cluster2"}, "ports": {"http1": 15443}, "locality": "region2/zone1"},
      {"address": "10.0.0.42", "ports": {"http1": 15443}, "network": "external"}]}
}`

// decode reads JSON the way the webhook does (integers as int64).
func decode(t *testing.T, js string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := utiljson.Unmarshal([]byte(js), &m); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return m
}

func TestReadServiceEntrySeed(t *testing.T) {
	se := ReadServiceEntry(decode(t, seedEntry))
	want := ServiceEntry{
		Namespace: "foo", Name: "httpbin-bar",
		Labels:      map[string]string{ManagedByLabel: ManagedByValue},
		Annotations: se.Annotations,
		Hosts:       []string{"httpbin.bar.global"}, Addresses: []string{"240.0.0.2"}, ExportTo: []string{"."},
		Location: LocationMeshInternal, Resolution: ResolutionDNS,
		Ports: []Port{{Name: "http1", Protocol: "HTTP", Number: 8000, TargetPort: 8080}},
		Endpoints: []Endpoint{
			{Address: "203.0.113.7", Labels: map[string]string{"cluster": "cluster2"}, Ports: map[string]uint32{"http1": 15443}, Locality: "region2/zone1"},
			{Address: "10.0.0.42", Ports: map[string]uint32{"http1": 15443}, Network: ExternalNetwork},
		},
	}
	if !reflect.DeepEqual(se, want) {
		t.Fatalf("ReadServiceEntry(seed)\n got %+v\nwant %+v", se, want)
	}
	if !se.Managed() || se.String() != "foo/httpbin-bar" || se.ExportedFrom() != "bar/httpbin" || se.ClusterDomain() != "east.local" {
		t.Errorf("Managed %v, String %q, ExportedFrom %q, ClusterDomain %q", se.Managed(), se, se.ExportedFrom(), se.ClusterDomain())
	}
	if got := se.SourceClusters(); !slices.Equal(got, []string{"cluster2", "cluster3"}) {
		t.Errorf("SourceClusters = %q", got)
	}
	if got := se.SourceVersions(); !reflect.DeepEqual(got, map[string][]string{"cluster2": {"v1"}, "cluster3": {"v1", "v2"}}) {
		t.Errorf("SourceVersions = %v", got)
	}
	if !se.Applies("global") || se.GlobalHost("global") != "httpbin.bar.global" || se.Applies("mesh.example") {
		t.Errorf("Applies/GlobalHost wrong for %q", se.Hosts)
	}
	e := se.Entry()
	if e.Host != "httpbin.bar.global" || !slices.Equal(e.Ports, []uint32{8000}) || e.Domain() != "east.local" ||
		!e.Selects(map[string]string{"cluster": "cluster2"}) || len(e.EndpointLabels) != 2 {
		t.Errorf("Entry = %+v", e)
	}
}

// TestReadServiceEntryLenient: a field of the wrong type is left out and
// listed in Skipped, never a panic; a port number that is not an integer
// in 1-65535 is absent wherever it is read, never truncated.
func TestReadServiceEntryLenient(t *testing.T) {
	tests := map[string]struct {
		spec        string // YAML of the spec, "" for no spec at all
		check       func(se ServiceEntry) bool
		wantSkipped []string
	}{
		"no spec": {
			check: func(se ServiceEntry) bool {
				return se.Hosts == nil && se.Ports == nil && se.Endpoints == nil && !se.Applies("") && se.GlobalHost("") == ""
			},
		},
		"spec not an object": {
			spec:        `[x]`,
			check:       func(se ServiceEntry) bool { return se.Hosts == nil && !se.Applies("") },
			wantSkipped: []string{"spec"},
		},
		"spec null": {spec: `null`, check: func(se ServiceEntry) bool { return se.Hosts == nil }},
		"hosts a string": {
			spec:        `{hosts: httpbin.bar.global}`,
			check:       func(se ServiceEntry) bool { return se.Hosts == nil && !se.Applies("") },
			wantSkipped: []string{"spec.hosts"},
		},
		"a host not a string": {
			spec: `{hosts: [httpbin.bar.global, 5]}`,
			// It still applies, but has no single valid host to claim a VIP for.
			check:       func(se ServiceEntry) bool { return se.Applies("") && se.GlobalHost("") == "" && len(se.Hosts) == 1 },
			wantSkipped: []string{"spec.hosts[1]"},
		},
		"port number 1.5": {
			spec: `{ports: [{name: http, number: 1.5}], endpoints: [{address: gw, ports: {http: 1.5, tcp: 15443}}]}`,
			check: func(se ServiceEntry) bool {
				return se.Ports[0] == Port{Name: "http"} && se.PortNumbers() == nil && se.Entry().Ports == nil &&
					reflect.DeepEqual(se.Endpoints[0].Ports, map[string]uint32{"tcp": 15443})
			},
			wantSkipped: []string{"spec.endpoints[0].ports[http]", "spec.ports[0].number"},
		},
		"port numbers out of range or strings": {
			spec:        `{ports: [{name: a, number: 0}, {name: b, number: 70000}, {name: c, number: "8000"}, {name: d, number: 4294975296, targetPort: -1}]}`,
			check:       func(se ServiceEntry) bool { return len(se.Ports) == 4 && se.PortNumbers() == nil },
			wantSkipped: []string{"spec.ports[0].number", "spec.ports[1].number", "spec.ports[2].number", "spec.ports[3].number", "spec.ports[3].targetPort"},
		},
		"mistyped items": {
			spec: `{ports: [1, {name: 2, protocol: 3}], endpoints: [x, {address: 1, labels: {cluster: 2, zone: a}, ports: [1], locality: 5}], addresses: [1], location: 1, exportTo: "*"}`,
			check: func(se ServiceEntry) bool {
				return len(se.Ports) == 1 && se.Ports[0] == Port{} && len(se.Endpoints) == 1 &&
					reflect.DeepEqual(se.Endpoints[0], Endpoint{Labels: map[string]string{"zone": "a"}}) &&
					se.Addresses == nil && se.SkippedAt("spec.addresses") && !se.SkippedAt("spec.address") && se.Location == "" && se.ExportTo == nil
			},
			wantSkipped: []string{
				"spec.addresses[0]", "spec.endpoints[0]", "spec.endpoints[1].address", "spec.endpoints[1].labels[cluster]", "spec.endpoints[1].locality",
				"spec.endpoints[1].ports", "spec.exportTo", "spec.location", "spec.ports[0]", "spec.ports[1].name", "spec.ports[1].protocol",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			obj := map[string]any{"metadata": map[string]any{"name": "n", "namespace": "ns"}}
			if tc.spec != "" {
				var spec any
				if err := yaml.Unmarshal([]byte(tc.spec), &spec); err != nil {
					t.Fatal(err)
				}
				obj["spec"] = spec
			}
			se := ReadServiceEntry(obj)
			if !tc.check(se) {
				t.Errorf("spec %s: read %+v", tc.spec, se)
			}
			got := slices.Sorted(slices.Values(se.Skipped))
			if !slices.Equal(got, tc.wantSkipped) {
				t.Errorf("spec %s: Skipped = %q, want %q", tc.spec, got, tc.wantSkipped)
			}
		})
	}
}

func TestReadServiceEntryAnnotations(t *testing.T) {
	tests := map[string]struct {
		annotations  map[string]any
		clusters     []string
		versions     map[string][]string
		domain       string
		entryDomain  string
		exportedFrom string
		managed      bool
	}{
		"none": {versions: map[string][]string{}, domain: DefaultClusterDomain},
		"hand-edited versions lose only the versions": {
			annotations: map[string]any{AnnotationSourceVersions: "{not json", AnnotationSourceClusters: ",c2,,c3 ,"},
			clusters:    []string{"c2", "c3"}, versions: map[string][]string{}, domain: DefaultClusterDomain,
		},
		"other domain": {
			annotations: map[string]any{AnnotationSourceClusterDomain: "east.local", AnnotationExportedFrom: "bar/httpbin"},
			versions:    map[string][]string{}, domain: "east.local", entryDomain: "east.local", exportedFrom: "bar/httpbin",
		},
		"annotation not a string": {
			annotations: map[string]any{AnnotationSourceClusters: 5, AnnotationExportedFrom: "bar/httpbin"},
			versions:    map[string][]string{}, domain: DefaultClusterDomain, exportedFrom: "bar/httpbin",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			md := map[string]any{"annotations": tc.annotations}
			if tc.annotations == nil {
				md = map[string]any{"labels": map[string]any{ManagedByLabel: "someone-else"}}
			}
			se := ReadServiceEntry(map[string]any{"metadata": md})
			if !slices.Equal(se.SourceClusters(), tc.clusters) || !reflect.DeepEqual(se.SourceVersions(), tc.versions) ||
				se.ClusterDomain() != tc.domain || se.Entry().ClusterDomain != tc.entryDomain || se.ExportedFrom() != tc.exportedFrom || se.Managed() != tc.managed {
				t.Errorf("annotations %v: clusters %q versions %v domain %q entry domain %q exportedFrom %q managed %v",
					tc.annotations, se.SourceClusters(), se.SourceVersions(), se.ClusterDomain(), se.Entry().ClusterDomain, se.ExportedFrom(), se.Managed())
			}
		})
	}
	if ReadServiceEntry(nil).Managed() {
		t.Error("nil reads as managed")
	}
}

func TestApplies(t *testing.T) {
	for js, want := range map[string]bool{
		`{"spec":{"hosts":["httpbin.bar.global"]}}`:                true,
		`{"spec":{"hosts":["httpbin.example.com", "a.b.global"]}}`: true,
		`{"spec":{"hosts":["httpbin.example.com"]}}`:               false,
		`{"spec":{"hosts":"httpbin.bar.global"}}`:                  false,
		`{"spec":{"hosts":[1, "httpbin.bar.global"]}}`:             true,
		`{"spec":"x"}`: false,
		`{}`:           false,
	} {
		if got := Applies(decode(t, js), ""); got != want {
			t.Errorf("Applies(%s) = %v, want %v", js, got, want)
		}
		if got := ReadServiceEntry(decode(t, js)).Applies(""); got != want {
			t.Errorf("ServiceEntry.Applies(%s) = %v, want %v", js, got, want)
		}
	}
}

func TestPortNumber(t *testing.T) {
	for in, want := range map[any]uint32{int64(8000): 8000, 1: 1, float64(65535): 65535, int32(15443): 15443} {
		if got, ok := PortNumber(in); !ok || got != want {
			t.Errorf("PortNumber(%T %v) = %d, %v", in, in, got, ok)
		}
	}
	for _, in := range []any{1.5, float64(8000.5), int64(0), int64(-1), int64(65536), int64(1<<32 + 8000), "8000", nil} {
		if n, ok := PortNumber(in); ok {
			t.Errorf("PortNumber(%T %v) = %d, is a port number", in, in, n)
		}
	}
}
