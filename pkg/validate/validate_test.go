package validate

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// seedJSON is the httpbin-bar seed entry of test/seeds.
const seedJSON = `{
  "apiVersion": "networking.istio.io/v1",
  "kind": "ServiceEntry",
  "metadata": {"name": "httpbin-bar", "namespace": "foo"},
  "spec": {
    "hosts": ["httpbin.bar.global"],
    "location": "MESH_INTERNAL",
    "resolution": "DNS",
    "ports": [{"name": "http1", "number": 8000, "protocol": "http"}],
    "addresses": ["240.0.0.2"],
    "endpoints": [{"address": "203.0.113.7", "labels": {"cluster": "cluster2"}, "ports": {"http1": 15443}}]
  }
}`

// seed returns the seed entry with edit applied to its spec.
func seed(t *testing.T, edit func(spec map[string]any)) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := utiljson.Unmarshal([]byte(seedJSON), &m); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(m["spec"].(map[string]any))
	}
	return &unstructured.Unstructured{Object: m}
}

func TestValidateServiceEntry(t *testing.T) {
	endpoint := func(spec map[string]any) map[string]any {
		return spec["endpoints"].([]any)[0].(map[string]any)
	}
	tests := map[string]struct {
		edit   func(spec map[string]any)
		cfg    func(*rules.Policy)
		want   map[string]string // field path → message fragment
		wantOK bool
		warn   string
	}{
		"seed":           {wantOK: true},
		"static with ip": {edit: func(s map[string]any) { s["resolution"] = "STATIC" }, wantOK: true},
		"unset location": {edit: func(s map[string]any) { delete(s, "location") }, wantOK: true},
		"two gateways": {edit: func(s map[string]any) {
			s["endpoints"] = append(s["endpoints"].([]any), map[string]any{"address": "gw.example.com", "labels": map[string]any{"cluster": "c3"}, "ports": map[string]any{"http1": int64(15443)}})
		}, wantOK: true},
		"mixed hosts":          {edit: func(s map[string]any) { s["hosts"] = []any{"httpbin.bar.global", "httpbin.example.com"} }, want: map[string]string{"spec.hosts[1]": "exactly one host"}},
		"two global hosts":     {edit: func(s map[string]any) { s["hosts"] = []any{"httpbin.bar.global", "sleep.foo.global"} }, want: map[string]string{"spec.hosts[1]": "one VIP cannot serve two"}},
		"bad host form":        {edit: func(s map[string]any) { s["hosts"] = []any{"httpbin.global"} }, want: map[string]string{"spec.hosts[0]": "<service>.<namespace>.global"}},
		"mesh external":        {edit: func(s map[string]any) { s["location"] = "MESH_EXTERNAL" }, want: map[string]string{"spec.location": "MESH_INTERNAL"}},
		"resolution none":      {edit: func(s map[string]any) { s["resolution"] = "NONE" }, want: map[string]string{"spec.resolution": "DNS or STATIC"}},
		"location not string":  {edit: func(s map[string]any) { s["location"] = int64(1) }, want: map[string]string{"spec.location": "must be a string"}},
		"no addresses":         {edit: func(s map[string]any) { delete(s, "addresses") }, want: map[string]string{"spec.addresses": "mutating webhook allocates"}},
		"two addresses":        {edit: func(s map[string]any) { s["addresses"] = []any{"240.0.0.2", "240.0.0.3"} }, want: map[string]string{"spec.addresses": "must have at most 1"}},
		"cidr address":         {edit: func(s map[string]any) { s["addresses"] = []any{"240.0.0.0/24"} }, want: map[string]string{"spec.addresses[0]": "CIDR"}},
		"address outside":      {edit: func(s map[string]any) { s["addresses"] = []any{"10.0.0.2"} }, want: map[string]string{"spec.addresses[0]": "outside the VIP range"}},
		"address istio range":  {edit: func(s map[string]any) { s["addresses"] = []any{"240.240.0.9"} }, want: map[string]string{"spec.addresses[0]": "auto-allocation"}},
		"address broadcast":    {edit: func(s map[string]any) { s["addresses"] = []any{"255.255.255.255"} }, want: map[string]string{"spec.addresses[0]": "broadcast"}},
		"custom range":         {edit: func(s map[string]any) { s["addresses"] = []any{"240.0.0.2"} }, cfg: withRange("241.0.0.0/8"), want: map[string]string{"spec.addresses[0]": "241.0.0.0/8"}},
		"no ports":             {edit: func(s map[string]any) { delete(s, "ports") }, want: map[string]string{"spec.ports": "at least one port", "spec.endpoints[0].ports[http1]": "no port named"}},
		"no endpoints":         {edit: func(s map[string]any) { s["endpoints"] = []any{} }, want: map[string]string{"spec.endpoints": "at least one endpoint"}},
		"endpoint no address":  {edit: func(s map[string]any) { delete(endpoint(s), "address") }, want: map[string]string{"spec.endpoints[0].address": "gateway address"}},
		"endpoint bad address": {edit: func(s map[string]any) { endpoint(s)["address"] = "not an address!" }, want: map[string]string{"spec.endpoints[0].address": "IP address or a DNS name"}},
		"static with hostname": {edit: func(s map[string]any) { s["resolution"] = "STATIC"; endpoint(s)["address"] = "gw.example.com" }, want: map[string]string{"spec.endpoints[0].address": "resolution: DNS"}},
		"endpoint wrong port":  {edit: func(s map[string]any) { endpoint(s)["ports"] = map[string]any{"http1": int64(8000)} }, want: map[string]string{"spec.endpoints[0].ports[http1]": "15443"}},
		"endpoint other port ok": {
			edit: func(s map[string]any) { endpoint(s)["ports"] = map[string]any{"http1": int64(31443)} },
			cfg:  func(c *rules.Policy) { c.AllowedGatewayPorts = []uint32{15443, 31443} }, wantOK: true,
		},
		"endpoint missing port":  {edit: func(s map[string]any) { delete(endpoint(s), "ports") }, want: map[string]string{"spec.endpoints[0].ports[http1]": "map http1 to 15443"}},
		"endpoint unknown port":  {edit: func(s map[string]any) { endpoint(s)["ports"].(map[string]any)["grpc"] = int64(15443) }, want: map[string]string{"spec.endpoints[0].ports[grpc]": "no port named"}},
		"endpoint ports not map": {edit: func(s map[string]any) { endpoint(s)["ports"] = []any{int64(15443)} }, want: map[string]string{"spec.endpoints[0].ports": "must be a map"}},
		"duplicate port name": {
			edit: func(s map[string]any) {
				s["ports"] = append(s["ports"].([]any), map[string]any{"name": "http1", "number": int64(9000), "protocol": "HTTP"})
			},
			want: map[string]string{"spec.ports[1].name": "Duplicate value"},
		},
		"duplicate port number": {
			edit: func(s map[string]any) {
				s["ports"] = append(s["ports"].([]any), map[string]any{"name": "grpc", "number": int64(8000), "protocol": "GRPC"})
				endpoint(s)["ports"].(map[string]any)["grpc"] = int64(15443)
			},
			want: map[string]string{"spec.ports[1].number": "Duplicate value"},
		},
		"invalid protocol":   {edit: func(s map[string]any) { s["ports"].([]any)[0].(map[string]any)["protocol"] = "SMTP" }, want: map[string]string{"spec.ports[0].protocol": "GRPC"}},
		"port number zero":   {edit: func(s map[string]any) { s["ports"].([]any)[0].(map[string]any)["number"] = int64(0) }, want: map[string]string{"spec.ports[0].number": "1-65535"}},
		"port number huge":   {edit: func(s map[string]any) { s["ports"].([]any)[0].(map[string]any)["number"] = int64(70000) }, want: map[string]string{"spec.ports[0].number": "1-65535"}},
		"port number string": {edit: func(s map[string]any) { s["ports"].([]any)[0].(map[string]any)["number"] = "8000" }, want: map[string]string{"spec.ports[0].number": "integer"}},
		"port without name": {
			edit: func(s map[string]any) { delete(s["ports"].([]any)[0].(map[string]any), "name") },
			want: map[string]string{"spec.ports[0].name": "needs a name", "spec.endpoints[0].ports[http1]": "no port named"},
		},
		"workload selector": {edit: func(s map[string]any) { s["workloadSelector"] = map[string]any{"labels": map[string]any{"app": "x"}} }, want: map[string]string{"spec.workloadSelector": "gateway"}},
		"no cluster label":  {edit: func(s map[string]any) { delete(endpoint(s), "labels") }, wantOK: true, warn: `no "cluster" label`},
		"everything wrong at once": {
			edit: func(s map[string]any) {
				s["location"] = "MESH_EXTERNAL"
				s["resolution"] = "NONE"
				s["addresses"] = []any{"10.0.0.1"}
				endpoint(s)["ports"] = map[string]any{"http1": int64(80)}
			},
			want: map[string]string{"spec.location": "", "spec.resolution": "", "spec.addresses[0]": "", "spec.endpoints[0].ports[http1]": ""},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := rules.DefaultPolicy()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			obj := seed(t, tc.edit)
			errs, warnings := ValidateServiceEntry(obj, cfg, nil)
			if tc.wantOK {
				if len(errs) != 0 {
					t.Fatalf("spec %v: unexpected errors %v", obj.Object["spec"], errs)
				}
			} else {
				got := map[string]string{}
				for _, e := range errs {
					got[e.Field] += e.Error() + "\n"
				}
				for f, msg := range tc.want {
					if !strings.Contains(got[f], msg) || got[f] == "" {
						t.Errorf("spec %v: no error on %s containing %q; got %v", obj.Object["spec"], f, msg, errs)
					}
				}
				if len(got) != len(tc.want) {
					t.Errorf("spec %v: errors on %d fields, want %d: %v", obj.Object["spec"], len(got), len(tc.want), errs)
				}
			}
			if tc.warn != "" && !strings.Contains(strings.Join(warnings, "\n"), tc.warn) {
				t.Errorf("warnings %q, want one containing %q", warnings, tc.warn)
			}
			if tc.warn == "" && len(warnings) != 0 {
				t.Errorf("unexpected warnings %q", warnings)
			}
		})
	}
}

func withRange(rng string) func(*rules.Policy) {
	return func(c *rules.Policy) {
		space, err := rules.NewVIPSpace(rng, rules.DefaultExcludedRanges)
		if err != nil {
			panic(err)
		}
		c.Space = space
	}
}

func TestNotApplicable(t *testing.T) {
	for name, edit := range map[string]func(map[string]any){
		"local host":   func(s map[string]any) { s["hosts"] = []any{"httpbin.example.com"}; s["location"] = "MESH_EXTERNAL" },
		"no hosts":     func(s map[string]any) { delete(s, "hosts") },
		"hosts string": func(s map[string]any) { s["hosts"] = "httpbin.bar.global" },
	} {
		t.Run(name, func(t *testing.T) {
			obj := seed(t, edit)
			if rules.Applies(obj.Object, "") || rules.ReadServiceEntry(obj.Object).Applies("") {
				t.Fatalf("Applies(%v) = true", obj.Object["spec"])
			}
			if errs, w := ValidateServiceEntry(obj, rules.DefaultPolicy(), nil); len(errs)+len(w) != 0 {
				t.Fatalf("ValidateServiceEntry(%v) = %v, %v; want nothing", obj.Object["spec"], errs, w)
			}
		})
	}
	if !rules.Applies(seed(t, nil).Object, "") || rules.Applies(nil, "") {
		t.Fatal("Applies(seed) = false or Applies(nil) = true")
	}
	if errs, w := ValidateServiceEntry(nil, rules.DefaultPolicy(), nil); len(errs)+len(w) != 0 {
		t.Fatalf("ValidateServiceEntry(nil) = %v, %v; want nothing", errs, w)
	}
	if got := rules.ReadServiceEntry(seed(t, nil).Object).GlobalHost("global"); got != "httpbin.bar.global" {
		t.Errorf("GlobalHost(seed) = %q", got)
	}
	if got := rules.ReadServiceEntry(seed(t, func(s map[string]any) { s["hosts"] = []any{"a.b.c.global"} }).Object).GlobalHost("global"); got != "" {
		t.Errorf("GlobalHost(bad host) = %q, want empty", got)
	}
}

func TestSpecNotObject(t *testing.T) {
	obj := seed(t, nil)
	obj.Object["spec"] = []any{"x"}
	if errs, _ := ValidateServiceEntry(obj, rules.DefaultPolicy(), nil); len(errs) != 0 {
		t.Fatalf("a spec that is not an object has no .global host, got %v", errs)
	}
}
