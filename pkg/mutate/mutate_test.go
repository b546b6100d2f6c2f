package mutate

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/validate"
)

func obj(t *testing.T, js string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := utiljson.Unmarshal([]byte(js), &m); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return &unstructured.Unstructured{Object: m}
}

// fixedAlloc hands out one address and counts calls.
type fixedAlloc struct {
	addr  netip.Addr
	calls int
	hosts []string
}

func (f *fixedAlloc) alloc(_ context.Context, host string) (netip.Addr, error) {
	f.calls++
	f.hosts = append(f.hosts, host)
	return f.addr, nil
}

const minimal = `{"apiVersion":"networking.istio.io/v1","kind":"ServiceEntry","metadata":{"name":"httpbin-bar","namespace":"foo"},
"spec":{"hosts":["httpbin.bar.global"],"ports":[{"name":"http1","number":8000,"protocol":"http"}],"endpoints":[{"address":"203.0.113.7"}]}}`

const complete = `{"apiVersion":"networking.istio.io/v1","kind":"ServiceEntry","metadata":{"name":"httpbin-bar","namespace":"foo"},
"spec":{"hosts":["httpbin.bar.global"],"location":"MESH_INTERNAL","resolution":"DNS","addresses":["240.0.0.9"],
"ports":[{"name":"http1","number":8000,"protocol":"http"}],"endpoints":[{"address":"203.0.113.7","ports":{"http1":15443}}]},"status":{}}`

func TestDefault(t *testing.T) {
	tests := map[string]struct {
		in        string
		want      string // expected object after Default
		wantCalls int
		wantRes   Result
	}{
		"minimal": {
			in: minimal,
			want: `{"apiVersion":"networking.istio.io/v1","kind":"ServiceEntry","metadata":{"name":"httpbin-bar","namespace":"foo"},
"spec":{"hosts":["httpbin.bar.global"],"location":"MESH_INTERNAL","resolution":"DNS","addresses":["240.0.0.9"],
"ports":[{"name":"http1","number":8000,"protocol":"http"}],"endpoints":[{"address":"203.0.113.7","ports":{"http1":15443}}]}}`,
			wantCalls: 1,
			wantRes:   Result{Location: true, Resolution: true, Address: netip.MustParseAddr("240.0.0.9"), EndpointPorts: 1},
		},
		"complete untouched, status kept": {in: complete, want: complete},
		"explicit values kept": {
			in: `{"spec":{"hosts":["httpbin.bar.global"],"location":"MESH_EXTERNAL","resolution":"NONE","addresses":["10.0.0.1"],
"ports":[{"name":"a","number":1},{"name":"b","number":2}],"endpoints":[{"address":"x","ports":{"a":80}}]}}`,
			want: `{"spec":{"hosts":["httpbin.bar.global"],"location":"MESH_EXTERNAL","resolution":"NONE","addresses":["10.0.0.1"],
"ports":[{"name":"a","number":1},{"name":"b","number":2}],"endpoints":[{"address":"x","ports":{"a":80,"b":15443}}]}}`,
			wantRes: Result{EndpointPorts: 1},
		},
		"empty strings are unset": {
			in:        `{"spec":{"hosts":["httpbin.bar.global"],"location":"","resolution":null,"addresses":[]}}`,
			want:      `{"spec":{"hosts":["httpbin.bar.global"],"location":"MESH_INTERNAL","resolution":"DNS","addresses":["240.0.0.9"]}}`,
			wantCalls: 1,
			wantRes:   Result{Location: true, Resolution: true, Address: netip.MustParseAddr("240.0.0.9")},
		},
		"invalid host gets no VIP": {
			in:      `{"spec":{"hosts":["a.b.c.global"]}}`,
			want:    `{"spec":{"hosts":["a.b.c.global"],"location":"MESH_INTERNAL","resolution":"DNS"}}`,
			wantRes: Result{Location: true, Resolution: true},
		},
		"two hosts get no VIP": {
			in:      `{"spec":{"hosts":["a.b.global","x.example.com"]}}`,
			want:    `{"spec":{"hosts":["a.b.global","x.example.com"],"location":"MESH_INTERNAL","resolution":"DNS"}}`,
			wantRes: Result{Location: true, Resolution: true},
		},
		"not global untouched":  {in: `{"spec":{"hosts":["httpbin.example.com"]}}`, want: `{"spec":{"hosts":["httpbin.example.com"]}}`},
		"weird types untouched": {in: `{"spec":{"hosts":["a.b.global"],"location":1,"resolution":"DNS","endpoints":[1,{"ports":[1]}],"ports":"x"}}`, want: `{"spec":{"hosts":["a.b.global"],"location":1,"resolution":"DNS","endpoints":[1,{"ports":[1]}],"ports":"x","addresses":["240.0.0.9"]}}`, wantCalls: 1, wantRes: Result{Address: netip.MustParseAddr("240.0.0.9")}},
		"addresses not a list":  {in: `{"spec":{"hosts":["a.b.global"],"location":"MESH_INTERNAL","resolution":"DNS","addresses":"240.0.0.1"}}`, want: `{"spec":{"hosts":["a.b.global"],"location":"MESH_INTERNAL","resolution":"DNS","addresses":"240.0.0.1"}}`},
		"spec not object":       {in: `{"spec":"x"}`, want: `{"spec":"x"}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := obj(t, tc.in)
			a := &fixedAlloc{addr: netip.MustParseAddr("240.0.0.9")}
			res, err := Default(context.Background(), o, rules.DefaultPolicy(), a.alloc)
			if err != nil {
				t.Fatalf("Default(%s) = %v", tc.in, err)
			}
			if want := obj(t, tc.want); !reflect.DeepEqual(o.Object, want.Object) {
				t.Fatalf("Default(%s)\n got %v\nwant %v", tc.in, o.Object, want.Object)
			}
			if a.calls != tc.wantCalls {
				t.Errorf("allocator called %d times, want %d", a.calls, tc.wantCalls)
			}
			if res != tc.wantRes {
				t.Errorf("Result = %+v, want %+v", res, tc.wantRes)
			}
			// Idempotent: a second pass changes nothing and allocates nothing.
			before := o.DeepCopy()
			res2, err := Default(context.Background(), o, rules.DefaultPolicy(), a.alloc)
			if err != nil || res2.Changed() || !reflect.DeepEqual(before.Object, o.Object) || a.calls != tc.wantCalls {
				t.Errorf("second Default changed %+v (err %v, calls %d)", res2, err, a.calls)
			}
		})
	}
}

func TestDefaultedMinimalIsValid(t *testing.T) {
	o := obj(t, minimal)
	a := &fixedAlloc{addr: netip.MustParseAddr("240.0.0.9")}
	if _, err := Default(context.Background(), o, rules.DefaultPolicy(), a.alloc); err != nil {
		t.Fatal(err)
	}
	if errs, _ := validate.ValidateServiceEntry(o, rules.DefaultPolicy(), nil); len(errs) != 0 {
		t.Fatalf("defaulted entry %v is invalid: %v", o.Object, errs)
	}
	if len(a.hosts) != 1 || a.hosts[0] != "httpbin.bar.global" {
		t.Errorf("allocated for %v", a.hosts)
	}
}

func TestDefaultGatewayPortAndErrors(t *testing.T) {
	cfg := rules.DefaultPolicy()
	cfg.AllowedGatewayPorts = []uint32{31443, 15443}
	o := obj(t, minimal)
	if _, err := Default(context.Background(), o, cfg, nil); err != nil {
		t.Fatal(err)
	}
	ep := o.Object["spec"].(map[string]any)["endpoints"].([]any)[0].(map[string]any)
	if got := ep["ports"].(map[string]any)["http1"]; got != int64(31443) {
		t.Errorf("endpoint port = %v, want the first allowed gateway port 31443", got)
	}
	if _, ok := o.Object["spec"].(map[string]any)["addresses"]; ok {
		t.Error("addresses set without an allocator")
	}
	boom := func(context.Context, string) (netip.Addr, error) { return netip.Addr{}, errors.New("boom") }
	_, err := Default(context.Background(), obj(t, minimal), cfg, boom)
	if err == nil || !strings.Contains(err.Error(), "httpbin.bar.global") {
		t.Fatalf("allocation error = %v, want one naming the host", err)
	}
}

// TestAllocateAfterDefault: the admission handler defaults without an
// allocator, validates, and only then allocates; the two steps together
// are Default with the allocator.
func TestAllocateAfterDefault(t *testing.T) {
	for name, tc := range map[string]struct {
		in        string
		wantCalls int
	}{
		"minimal":              {in: minimal, wantCalls: 1},
		"complete":             {in: complete},
		"not global":           {in: `{"spec":{"hosts":["httpbin.example.com"]}}`},
		"a host not a string":  {in: `{"spec":{"hosts":["httpbin.bar.global",1]}}`},
		"addresses not a list": {in: `{"spec":{"hosts":["a.b.global"],"addresses":"240.0.0.1"}}`},
		"an address mistyped":  {in: `{"spec":{"hosts":["a.b.global"],"addresses":[1]}}`},
	} {
		t.Run(name, func(t *testing.T) {
			a := &fixedAlloc{addr: netip.MustParseAddr("240.0.0.9")}
			two := obj(t, tc.in)
			res, err := Default(context.Background(), two, rules.DefaultPolicy(), nil)
			if err != nil || res.Address.IsValid() || a.calls != 0 {
				t.Fatalf("Default without an allocator = %+v, %v", res, err)
			}
			addr, err := Allocate(context.Background(), two, rules.ReadServiceEntry(two.Object), rules.DefaultPolicy(), a.alloc)
			if err != nil || a.calls != tc.wantCalls || addr.IsValid() != (tc.wantCalls == 1) {
				t.Fatalf("Allocate(%s) = %v, %v after %d calls, want %d", tc.in, addr, err, a.calls, tc.wantCalls)
			}
			one := obj(t, tc.in)
			if _, err := Default(context.Background(), one, rules.DefaultPolicy(), a.alloc); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(one.Object, two.Object) {
				t.Errorf("Default then Allocate = %v; Default with the allocator = %v", two.Object, one.Object)
			}
		})
	}
}

func TestDefaultDestinationRuleIdempotent(t *testing.T) {
	entry := &rules.Entry{Namespace: "foo", Name: "httpbin-bar", Host: "httpbin.bar.global", Ports: []uint32{8000}, ClusterDomain: "east.local"}
	dr := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"host":    "httpbin.bar.global",
		"subsets": []any{map[string]any{"name": "v2", "labels": map[string]any{"cluster": "c2"}}},
		"trafficPolicy": map[string]any{"portLevelSettings": []any{
			map[string]any{"port": map[string]any{"number": int64(8000)}, "tls": map[string]any{"sni": "kept"}},
		}},
	}}}
	first := DefaultDestinationRule(dr, entry, "global")
	if first.TLSModes != 2 || first.SNIs != 1 {
		t.Errorf("first pass filled %+v; want the rule's and the port's mode, and the subset's SNI", first)
	}
	sni, _, _ := unstructured.NestedSlice(dr.Object, "spec", "trafficPolicy", "portLevelSettings")
	if got := sni[0].(map[string]any)["tls"].(map[string]any)["sni"]; got != "kept" {
		t.Errorf("a set SNI was replaced by %v; validation reports it instead", got)
	}
	subsets, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
	pls := subsets[0].(map[string]any)["trafficPolicy"].(map[string]any)["portLevelSettings"].([]any)
	if got := pls[0].(map[string]any)["tls"].(map[string]any)["sni"]; got != "outbound_.8000_.v2_.httpbin.bar.svc.east.local" {
		t.Errorf("subset SNI %v; want the entry's cluster domain", got)
	}
	if again := DefaultDestinationRule(dr, entry, "global"); again.Changed() {
		t.Errorf("second pass changed %+v", again)
	}
}
