package builders

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// updateGolden rewrites the golden files instead of comparing with them:
// UPDATE_GOLDEN=1 go test ./pkg/builders/ (then review the diff).
var updateGolden = os.Getenv("UPDATE_GOLDEN") != ""

func httpbin() Export {
	return Export{
		Name: "httpbin", Namespace: "bar", TargetNamespace: "foo",
		Ports:   []Port{{Name: "http1", Number: 8000, Protocol: "HTTP"}},
		Sources: []Source{{Cluster: "cluster2", GatewayHost: "203.0.113.7", GatewayPort: 15443, Versions: []string{"v1"}}},
		VIP:     "240.0.0.2",
	}
}

func helloworld() Export {
	return Export{
		Name: "helloworld", Namespace: "hello",
		Ports: []Port{{Name: "http", Number: 5000, Protocol: "HTTP"}},
		Sources: []Source{
			{Cluster: "cluster3", GatewayHost: "198.51.100.31", GatewayPort: 31443, Versions: []string{"v4"}},
			{Cluster: "cluster2", GatewayHost: "a1b2c3d4e5f6a7b8-1234567890.eu-west-1.elb.amazonaws.com", GatewayPort: 15443, Versions: []string{"v3", "v2", "v2"}},
		},
		VIP: "240.0.0.4",
	}
}

// goldenCase is the input of one golden file: testdata/<name>.yaml holds
// the ServiceEntry and `.global` DestinationRule built from export and the
// source cluster's DestinationRule built from local.
type goldenCase struct {
	export   Export
	warnings int
	local    Local
}

func goldenCases() map[string]goldenCase {
	egress := httpbin()
	egress.EgressAddress = "10.0.0.42"
	shared := helloworld()
	shared.Sources[0].Versions = []string{"v1", "v4"}
	shared.Sources[1].Versions = []string{"v1", "v2"}
	partial := shared
	partial.Sources = append(slices.Clone(shared.Sources), Source{Cluster: "cluster4", GatewayHost: "192.0.2.13", GatewayPort: 15443, Versions: []string{"v5"}})
	noVIP := httpbin()
	noVIP.VIP = ""
	return map[string]goldenCase{
		"httpbin-bar":        {export: httpbin(), local: Local{Name: "httpbin", Namespace: "bar", Versions: []string{"v1"}, ExportedTo: []string{"cluster1"}}},
		"helloworld-two":     {export: helloworld(), local: Local{Name: "helloworld", Namespace: "hello", Versions: []string{"v3", "v2"}, ExportedTo: []string{"cluster1", "cluster1"}}},
		"httpbin-bar-egress": {export: egress, local: Local{Name: "httpbin", Namespace: "bar", VersionLabel: "track", Versions: []string{"stable"}, ExportedTo: []string{"cluster1"}}},
		"helloworld-shared":  {export: shared, local: Local{Name: "helloworld", Namespace: "hello", ExportedTo: []string{"cluster1"}}},
		"helloworld-partial": {export: partial, warnings: 1, local: Local{Name: "helloworld", Namespace: "hello", Versions: []string{"v1"}, ExportedTo: []string{"cluster1"}}},
		"httpbin-bar-no-vip": {export: noVIP, local: Local{Name: "httpbin", Namespace: "bar", Versions: []string{"v1"}, ExportedTo: []string{"cluster1", "cluster3"}}},
	}
}

// build builds the objects of tc, in the order of its golden file.
func (tc goldenCase) build(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	se, err := ServiceEntry(tc.export)
	if err != nil {
		t.Fatalf("ServiceEntry(%+v): %v", tc.export, err)
	}
	dr, warnings, err := GlobalDestinationRule(tc.export)
	if err != nil {
		t.Fatalf("GlobalDestinationRule(%+v): %v", tc.export, err)
	}
	if len(warnings) != tc.warnings {
		t.Errorf("GlobalDestinationRule(%+v) warnings = %q, want %d", tc.export, warnings, tc.warnings)
	}
	return []*unstructured.Unstructured{se, dr, LocalDestinationRule(tc.local)}
}

func TestGolden(t *testing.T) {
	for name, tc := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			compareGolden(t, filepath.Join("testdata", name+".yaml"), tc.build(t)...)
		})
	}
}

// compareGolden compares objects with a multi-document YAML file as data,
// not text: key order, quoting and number formatting do not matter.
func compareGolden(t *testing.T, path string, objs ...*unstructured.Unstructured) {
	t.Helper()
	if updateGolden {
		var buf bytes.Buffer
		for i, o := range objs {
			if i > 0 {
				buf.WriteString("---\n")
			}
			b, err := yaml.Marshal(o.Object)
			if err != nil {
				t.Fatal(err)
			}
			buf.Write(b)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (UPDATE_GOLDEN=1 writes it)", err)
	}
	docs := strings.Split(string(raw), "\n---\n")
	if len(docs) != len(objs) {
		t.Fatalf("%s has %d documents, built %d objects", path, len(docs), len(objs))
	}
	for i, doc := range docs {
		var want any
		if err := yaml.Unmarshal([]byte(doc), &want); err != nil {
			t.Fatalf("%s document %d: %v", path, i, err)
		}
		got := normalize(t, objs[i].Object)
		if !reflect.DeepEqual(got, normalize(t, want)) {
			gotYAML, _ := yaml.Marshal(got)
			t.Errorf("%s document %d differs; built:\n%s\nwant:\n%s", path, i, gotYAML, doc)
		}
	}
}

func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		mutate func(*Export)
		err    string
	}{
		"bad service name":         {mutate: func(e *Export) { e.Name = "Bad_Name" }, err: "host"},
		"no ports":                 {mutate: func(e *Export) { e.Ports = nil }, err: "no ports"},
		"no sources":               {mutate: func(e *Export) { e.Sources = nil }, err: "no source"},
		"duplicate source":         {mutate: func(e *Export) { e.Sources = append(e.Sources, e.Sources[0]) }, err: "appears twice"},
		"egress with a host name":  {mutate: func(e *Export) { e.Sources[0].GatewayHost = "gw.example.com"; e.EgressAddress = "10.0.0.1" }, err: "--via-egress needs an IP"},
		"egress address not an IP": {mutate: func(e *Export) { e.EgressAddress = "egress" }, err: "egress gateway address"},
		"VIP not an IP":            {mutate: func(e *Export) { e.VIP = "vip" }, err: "VIP"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := httpbin()
			tc.mutate(&e)
			_, err := ServiceEntry(e)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("ServiceEntry(%+v) error = %v, want one containing %q", e, err, tc.err)
			}
		})
	}
}

func TestSourcesRoundTrip(t *testing.T) {
	e := helloworld()
	se, err := ServiceEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	got := SourcesOf(se)
	want := []Source{
		{Cluster: "cluster2", GatewayHost: e.Sources[1].GatewayHost, GatewayPort: 15443, Versions: []string{"v2", "v3"}},
		{Cluster: "cluster3", GatewayHost: "198.51.100.31", GatewayPort: 31443, Versions: []string{"v4"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SourcesOf(ServiceEntry(%+v)) = %+v, want %+v", e, got, want)
	}
	// Merging a new cluster2 source replaces only cluster2's endpoint.
	merged := MergeSource(got, Source{Cluster: "cluster2", GatewayHost: "192.0.2.99", GatewayPort: 15443, Versions: []string{"v5"}})
	e.Sources = merged
	se2, err := ServiceEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	if s := SourcesOf(se2); len(s) != 2 || s[0].GatewayHost != "192.0.2.99" || s[1].Cluster != "cluster3" {
		t.Errorf("after merging cluster2 again, sources = %+v", s)
	}
	if rest := RemoveSource(merged, "cluster3"); len(rest) != 1 || rest[0].Cluster != "cluster2" {
		t.Errorf("RemoveSource(cluster3) = %+v", rest)
	}
	// The egress endpoint has no cluster label and is no source.
	eg := httpbin()
	eg.EgressAddress = "10.0.0.42"
	seEgress, err := ServiceEntry(eg)
	if err != nil {
		t.Fatal(err)
	}
	if s := SourcesOf(seEgress); len(s) != 1 || s[0].Cluster != "cluster2" {
		t.Errorf("SourcesOf(egress entry) = %+v, want only cluster2", s)
	}
}

func TestPortsFor(t *testing.T) {
	tests := map[string]struct {
		ports []corev1.ServicePort
		want  []Port
		err   string
	}{
		"appProtocol wins": {
			ports: []corev1.ServicePort{{Name: "http1", Port: 8000, AppProtocol: ptr.To("http")}},
			want:  []Port{{Name: "http1", Number: 8000, Protocol: "HTTP"}},
		},
		"name prefix": {
			ports: []corev1.ServicePort{{Name: "grpc-api", Port: 9000, Protocol: corev1.ProtocolTCP}, {Name: "metrics", Port: 9090}},
			want:  []Port{{Name: "grpc-api", Number: 9000, Protocol: "GRPC"}, {Name: "metrics", Number: 9090, Protocol: "TCP"}},
		},
		"unnamed port gets a name": {
			ports: []corev1.ServicePort{{Port: 6379}},
			want:  []Port{{Name: "tcp-6379", Number: 6379, Protocol: "TCP"}},
		},
		"UDP":      {ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}, err: "only TCP"},
		"no ports": {err: "no ports"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "n"}, Spec: corev1.ServiceSpec{Ports: tc.ports}}
			got, err := PortsFor(svc)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("PortsFor(%+v) error = %v, want %q", tc.ports, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("PortsFor(%+v) = %+v, %v; want %+v", tc.ports, got, err, tc.want)
			}
		})
	}
}

func TestVersions(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "helloworld", Namespace: "hello"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "helloworld"}},
	}
	pod := func(name, ns, app, version string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": app, "version": version, "track": "t-" + version}}}
	}
	pods := []corev1.Pod{
		pod("a", "hello", "helloworld", "v2"),
		pod("b", "hello", "helloworld", "v3"),
		pod("c", "hello", "helloworld", "v3"),
		pod("d", "hello", "other", "v9"),
		pod("e", "elsewhere", "helloworld", "v8"),
	}
	done := pod("f", "hello", "helloworld", "v7")
	done.Status.Phase = corev1.PodSucceeded
	pods = append(pods, done)
	slice := discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "helloworld-abc", Namespace: "hello", Labels: map[string]string{discoveryv1.LabelServiceName: "helloworld"}},
		Endpoints:  []discoveryv1.Endpoint{{TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "b"}}},
	}
	tests := map[string]struct {
		slices []discoveryv1.EndpointSlice
		label  string
		want   []string
	}{
		"selector":            {want: []string{"v2", "v3"}},
		"other label":         {label: "track", want: []string{"t-v2", "t-v3"}},
		"endpoint slices win": {slices: []discoveryv1.EndpointSlice{slice}, want: []string{"v3"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Versions(svc, pods, tc.slices, tc.label)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Versions(label %q) = %q, want %q", tc.label, got, tc.want)
			}
		})
	}
}

func TestSelectsHost(t *testing.T) {
	dr := func(ns, host string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"host": host}}}
		u.SetNamespace(ns)
		return u
	}
	tests := map[string]struct {
		dr   *unstructured.Unstructured
		want bool
	}{
		"full name":                {dr: dr("other", "helloworld.hello.svc.cluster.local"), want: true},
		"short name, same ns":      {dr: dr("hello", "helloworld"), want: true},
		"short name, other ns":     {dr: dr("other", "helloworld"), want: false},
		"name.namespace":           {dr: dr("other", "helloworld.hello"), want: true},
		"the .global host":         {dr: dr("hello", "helloworld.hello.global"), want: false},
		"another service entirely": {dr: dr("hello", "reviews.hello.svc.cluster.local"), want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := SelectsHost(tc.dr, "helloworld", "hello"); got != tc.want {
				t.Errorf("SelectsHost(%s in %s) = %v, want %v", HostOf(tc.dr), tc.dr.GetNamespace(), got, tc.want)
			}
		})
	}
}

// TestSeedHttpbinBar checks the built entry against the reference object of
// the design (test/seeds/httpbin-bar.yaml): the same spec, given the seed's
// VIP and gateway address. Istio reads protocols in any case; the builder
// writes them as Istio's API documents them, upper case.
func TestSeedHttpbinBar(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "test", "seeds", "httpbin-bar.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var seed map[string]any
	if err := yaml.Unmarshal(raw, &seed); err != nil {
		t.Fatal(err)
	}
	se, err := ServiceEntry(httpbin())
	if err != nil {
		t.Fatal(err)
	}
	got := normalize(t, se.Object["spec"]).(map[string]any)
	want := normalize(t, seed["spec"]).(map[string]any)
	for _, spec := range []map[string]any{got, want} {
		for _, p := range spec["ports"].([]any) {
			port := p.(map[string]any)
			port["protocol"] = strings.ToUpper(port["protocol"].(string))
		}
	}
	if !reflect.DeepEqual(got, want) {
		gy, _ := yaml.Marshal(got)
		wy, _ := yaml.Marshal(want)
		t.Errorf("built spec:\n%s\nseed spec:\n%s", gy, wy)
	}
	if se.GetName() != seed["metadata"].(map[string]any)["name"] {
		t.Errorf("name = %s, seed's is %v", se.GetName(), seed["metadata"])
	}
}

// TestGlobalRuleSendsRemoteSNI checks the SNI of every port, and of every
// subset and port, of the `.global` rule: it must name the source cluster's
// own host (the only names its gateway's AUTO_PASSTHROUGH server routes),
// never the `.global` host.
func TestGlobalRuleSendsRemoteSNI(t *testing.T) {
	twoPorts := helloworld()
	twoPorts.Ports = append(twoPorts.Ports, Port{Name: "grpc", Number: 9000, Protocol: "GRPC"})
	corp := httpbin()
	corp.ClusterDomain = "corp.internal"
	tests := map[string]struct {
		export Export
		want   map[string]string // "<subset>/<port>" → SNI
	}{
		"one port, one subset": {httpbin(), map[string]string{
			"/8000":   "outbound_.8000_._.httpbin.bar.svc.cluster.local",
			"v1/8000": "outbound_.8000_.v1_.httpbin.bar.svc.cluster.local",
		}},
		"two ports, three subsets": {twoPorts, map[string]string{
			"/5000": "outbound_.5000_._.helloworld.hello.svc.cluster.local", "/9000": "outbound_.9000_._.helloworld.hello.svc.cluster.local",
			"v2/5000": "outbound_.5000_.v2_.helloworld.hello.svc.cluster.local", "v2/9000": "outbound_.9000_.v2_.helloworld.hello.svc.cluster.local",
			"v3/5000": "outbound_.5000_.v3_.helloworld.hello.svc.cluster.local", "v3/9000": "outbound_.9000_.v3_.helloworld.hello.svc.cluster.local",
			"v4/5000": "outbound_.5000_.v4_.helloworld.hello.svc.cluster.local", "v4/9000": "outbound_.9000_.v4_.helloworld.hello.svc.cluster.local",
		}},
		"source cluster domain": {corp, map[string]string{
			"/8000":   "outbound_.8000_._.httpbin.bar.svc.corp.internal",
			"v1/8000": "outbound_.8000_.v1_.httpbin.bar.svc.corp.internal",
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dr, _, err := GlobalDestinationRule(tc.export)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			collect := func(subset string, policy map[string]any) {
				pls, _, _ := unstructured.NestedSlice(policy, "portLevelSettings")
				for _, raw := range pls {
					pl := raw.(map[string]any)
					port, _, _ := unstructured.NestedInt64(pl, "port", "number")
					mode, _, _ := unstructured.NestedString(pl, "tls", "mode")
					sni, _, _ := unstructured.NestedString(pl, "tls", "sni")
					if mode != TLSModeIstioMutual {
						t.Errorf("subset %q port %d: tls.mode %q, want %s (port-level tls replaces the top-level one)", subset, port, mode, TLSModeIstioMutual)
					}
					got[subset+"/"+strconv.FormatInt(port, 10)] = sni
				}
			}
			top, _, _ := unstructured.NestedMap(dr.Object, "spec", "trafficPolicy")
			collect("", top)
			subsets, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
			for _, raw := range subsets {
				s := raw.(map[string]any)
				policy, _, _ := unstructured.NestedMap(s, "trafficPolicy")
				collect(s["name"].(string), policy)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("SNIs of %s = %v\nwant %v", tc.export.Host(), got, tc.want)
			}
			if n := len(RequiredSNIs(tc.export)); n != len(tc.want) {
				t.Errorf("RequiredSNIs lists %d lines, want %d: %q", n, len(tc.want), RequiredSNIs(tc.export))
			}
		})
	}
}

func TestClusterDomainAnnotation(t *testing.T) {
	corp := httpbin()
	corp.ClusterDomain = "corp.internal"
	se, err := ServiceEntry(corp)
	if err != nil {
		t.Fatal(err)
	}
	if got := ClusterDomainOf(se); got != "corp.internal" {
		t.Fatalf("ClusterDomainOf = %q, want corp.internal", got)
	}
	plain, err := ServiceEntry(httpbin())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := plain.GetAnnotations()[AnnotationSourceClusterDomain]; ok || ClusterDomainOf(plain) != "cluster.local" {
		t.Fatalf("an entry of cluster.local sources: annotations %v, ClusterDomainOf %q", plain.GetAnnotations(), ClusterDomainOf(plain))
	}
	bad := httpbin()
	bad.ClusterDomain = "Not A Domain"
	if _, err := ServiceEntry(bad); err == nil || !strings.Contains(err.Error(), "cluster domain") {
		t.Fatalf("bad cluster domain: %v", err)
	}
	local := LocalDestinationRule(Local{Name: "httpbin", Namespace: "bar", ClusterDomain: "corp.internal", Versions: []string{"v1"}})
	if h := HostOf(local); h != "httpbin.bar.svc.corp.internal" {
		t.Fatalf("local rule host = %q", h)
	}
}

func TestLocalityPolicyOnEveryLevel(t *testing.T) {
	e := helloworld()
	e.Ports = append(e.Ports, Port{Name: "grpc", Number: 9000, Protocol: "GRPC"})
	e.Locality = &LocalityPolicy{Failover: []Failover{{From: "region1", To: "region2"}}, Outlier: DefaultOutlier}
	dr, _, err := GlobalDestinationRule(e)
	if err != nil {
		t.Fatal(err)
	}
	var levels []map[string]any
	top, _, _ := unstructured.NestedMap(dr.Object, "spec", "trafficPolicy")
	levels = append(levels, top)
	collect := func(policy map[string]any) {
		pls, _, _ := unstructured.NestedSlice(policy, "portLevelSettings")
		for _, p := range pls {
			levels = append(levels, p.(map[string]any))
		}
	}
	collect(top)
	subsets, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
	for _, s := range subsets {
		p, _, _ := unstructured.NestedMap(s.(map[string]any), "trafficPolicy")
		collect(p)
	}
	if len(levels) != 1+2+3*2 {
		t.Fatalf("%d policy levels, want 9 (rule, 2 ports, 3 subsets × 2 ports)", len(levels))
	}
	for _, l := range levels {
		to, _, _ := unstructured.NestedSlice(l, "loadBalancer", "localityLbSetting", "failover")
		interval, _, _ := unstructured.NestedString(l, "outlierDetection", "interval")
		eject, _, _ := unstructured.NestedString(l, "outlierDetection", "baseEjectionTime")
		if len(to) != 1 || interval != "1s" || eject != "1m" {
			t.Fatalf("a level lacks the policy (port-level settings do not inherit): %v", l)
		}
	}
	if p := LocalityPolicyOf(dr); p == nil || !reflect.DeepEqual(*p, *e.Locality) {
		t.Fatalf("recorded policy = %+v, want %+v", p, e.Locality)
	}
	bad := *e.Locality
	bad.Outlier.Consecutive5xxErrors = 0
	e.Locality = &bad
	if _, _, err := GlobalDestinationRule(e); err == nil || !strings.Contains(err.Error(), "never fails over") {
		t.Fatalf("failover without outlier detection: %v", err)
	}
}
