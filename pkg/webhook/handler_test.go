package webhook_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	jsonpatch "gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/go-logr/logr"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook/webhooktest"
)

const seed = `{"apiVersion":"networking.istio.io/v1","kind":"ServiceEntry","metadata":{"name":"httpbin-bar","namespace":"foo"},
"spec":{"hosts":["httpbin.bar.global"],"location":"MESH_INTERNAL","resolution":"DNS","addresses":["240.0.0.2"],
"ports":[{"name":"http1","number":8000,"protocol":"http"}],"endpoints":[{"address":"203.0.113.7","labels":{"cluster":"cluster2"},"ports":{"http1":15443}}]}}`

const minimal = `{"apiVersion":"networking.istio.io/v1","kind":"ServiceEntry","metadata":{"name":"httpbin-min","namespace":"foo"},
"spec":{"hosts":["httpbin.bar.global"],"ports":[{"name":"http1","number":8000,"protocol":"http"}],"endpoints":[{"address":"203.0.113.7","labels":{"cluster":"cluster2"}}]}}`

const external = `{"apiVersion":"networking.istio.io/v1","kind":"ServiceEntry","metadata":{"name":"bad","namespace":"foo"},
"spec":{"hosts":["httpbin.bar.global"],"location":"MESH_EXTERNAL","resolution":"DNS","addresses":["240.0.0.7"],
"ports":[{"name":"http1","number":8000,"protocol":"http"}],"endpoints":[{"address":"203.0.113.7","labels":{"cluster":"cluster2"},"ports":{"http1":15443}}]}}`

const local = `{"apiVersion":"networking.istio.io/v1","kind":"ServiceEntry","metadata":{"name":"ext","namespace":"foo"},
"spec":{"hosts":["api.example.com"],"location":"MESH_EXTERNAL","resolution":"DNS","ports":[{"name":"https","number":443,"protocol":"TLS"}]}}`

type server struct {
	claims   *webhooktest.Claims
	metrics  *webhook.Metrics
	mutate   http.Handler
	validate http.Handler
}

func newServer(mode rules.Mode) *server {
	cfg := rules.DefaultPolicy()
	cfg.Mode = mode
	s := &server{claims: webhooktest.NewClaims(rules.DefaultVIPSpace()), metrics: webhook.NewMetrics(nil)}
	h := &webhook.Handlers{Config: cfg, Claims: s.claims, Metrics: s.metrics, Log: logr.Discard()}
	s.mutate = &admission.Webhook{Handler: h.Mutator()}
	s.validate = &admission.Webhook{Handler: h.Validator()}
	return s
}

func post(t *testing.T, h http.Handler, body []byte, contentType string) *admissionv1.AdmissionResponse {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req := httptest.NewRequest(http.MethodPost, "/", rd)
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &ar); err != nil || ar.Response == nil {
		t.Fatalf("response %q is not an AdmissionReview: %v", rec.Body.String(), err)
	}
	return ar.Response
}

func review(op admissionv1.Operation, obj string) []byte {
	return webhooktest.Review(op, "foo", "", []byte(obj), false)
}

func TestRawRequests(t *testing.T) {
	var wk map[string]any
	if err := json.Unmarshal(review(admissionv1.Create, seed), &wk); err != nil {
		t.Fatal(err)
	}
	wk["request"].(map[string]any)["kind"] = map[string]any{"group": "", "version": "v1", "kind": "Pod"}
	wk["request"].(map[string]any)["resource"] = map[string]any{"group": "", "version": "v1", "resource": "pods"}
	wrongKind, _ := json.Marshal(wk)
	huge := strings.Replace(seed, `"namespace":"foo"`, `"namespace":"foo","annotations":{"x":"`+strings.Repeat("a", webhook.MaxObjectBytes)+`"}`, 1)
	tests := map[string]struct {
		body        []byte
		contentType string
		wantAllowed bool
		wantCode    int32
		wantMsg     string
	}{
		"malformed review":    {body: []byte(`{"request": {`), wantCode: 400},
		"empty body":          {body: nil, wantCode: 400, wantMsg: "empty"},
		"wrong content type":  {body: review(admissionv1.Create, seed), contentType: "text/plain", wantCode: 400},
		"malformed object":    {body: review(admissionv1.Create, `{"spec": [`), wantCode: 400},
		"object not a map":    {body: review(admissionv1.Create, `"x"`), wantCode: 400},
		"object null":         {body: review(admissionv1.Create, `null`), wantCode: 400},
		"object a list":       {body: review(admissionv1.Create, `[1]`), wantCode: 400, wantMsg: "not a JSON object"},
		"no operation":        {body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1"}}`), wantCode: 400, wantMsg: "want CREATE or UPDATE"},
		"no object":           {body: webhooktest.Review(admissionv1.Create, "foo", "x", nil, false), wantCode: 400, wantMsg: "carries no object"},
		"wrong kind":          {body: []byte(wrongKind), wantCode: 400, wantMsg: "fix the webhook configuration"},
		"huge object":         {body: review(admissionv1.Create, huge), wantCode: 400, wantMsg: "more than"},
		"delete":              {body: webhooktest.Review(admissionv1.Delete, "foo", "x", nil, false), wantAllowed: true, wantCode: 200},
		"connect":             {body: webhooktest.Review(admissionv1.Connect, "foo", "x", nil, false), wantAllowed: true, wantCode: 200},
		"not global":          {body: review(admissionv1.Create, local), wantAllowed: true, wantCode: 200},
		"seed":                {body: review(admissionv1.Create, seed), wantAllowed: true, wantCode: 200},
		"update seed":         {body: review(admissionv1.Update, seed), wantAllowed: true, wantCode: 200},
		"spec not an object":  {body: review(admissionv1.Create, `{"metadata":{"name":"x"},"spec":"x"}`), wantAllowed: true, wantCode: 200},
		"hosts not a list":    {body: review(admissionv1.Create, `{"spec":{"hosts":{"a":"b.c.global"}}}`), wantAllowed: true, wantCode: 200},
		"numbers as floats":   {body: review(admissionv1.Create, strings.Replace(seed, `"number":8000`, `"number":8000.5`, 1)), wantCode: 422, wantMsg: "spec.ports[0].number"},
		"mesh external":       {body: review(admissionv1.Create, external), wantCode: 422, wantMsg: "spec.location"},
		"deep nesting object": {body: review(admissionv1.Create, `{"spec":{"hosts":["a.b.global"],"endpoints":[`+strings.Repeat(`[`, 5000)+strings.Repeat(`]`, 5000)+`]}}`), wantCode: 422},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for hname, h := range map[string]http.Handler{"mutate": newServer(rules.ModeDeny).mutate, "validate": newServer(rules.ModeDeny).validate} {
				ct := tc.contentType
				if ct == "" {
					ct = "application/json"
				}
				resp := post(t, h, tc.body, ct)
				code := int32(200)
				msg := ""
				if resp.Result != nil {
					code, msg = resp.Result.Code, resp.Result.Message
				}
				if hname == "mutate" && tc.wantCode == 422 {
					// The mutating handler only fills defaults; the
					// validating one denies.
					if !resp.Allowed {
						t.Errorf("%s: denied (%d %s), want allowed", hname, code, msg)
					}
					continue
				}
				if resp.Allowed != tc.wantAllowed || code != tc.wantCode || !strings.Contains(msg, tc.wantMsg) {
					t.Errorf("%s: allowed=%v code=%d msg=%q; want allowed=%v code=%d msg containing %q", hname, resp.Allowed, code, msg, tc.wantAllowed, tc.wantCode, tc.wantMsg)
				}
			}
		})
	}
}

func applyPatch(t *testing.T, obj string, resp *admissionv1.AdmissionResponse) map[string]any {
	t.Helper()
	var ops []jsonpatch.JsonPatchOperation
	if len(resp.Patch) > 0 {
		if err := json.Unmarshal(resp.Patch, &ops); err != nil {
			t.Fatal(err)
		}
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(obj), &m); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if op.Operation != "add" {
			t.Fatalf("patch op %v: the mutator must only add missing fields", op)
		}
		if strings.HasPrefix(op.Path, "/status") || strings.HasPrefix(op.Path, "/metadata") {
			t.Fatalf("patch touches %s", op.Path)
		}
		// Paths of this test are at most three levels deep.
		parts := strings.Split(strings.TrimPrefix(op.Path, "/"), "/")
		cur := m
		for i, p := range parts[:len(parts)-1] {
			switch next := cur[p].(type) {
			case map[string]any:
				cur = next
			case []any:
				cur = next[0].(map[string]any)
				if parts[i+1] == "0" {
					parts[i+1] = ""
				}
			}
		}
		if last := parts[len(parts)-1]; last != "" {
			cur[last] = op.Value
		}
	}
	return m
}

func TestMutateMinimal(t *testing.T) {
	s := newServer(rules.ModeDeny)
	resp := post(t, s.mutate, review(admissionv1.Create, minimal), "application/json")
	if !resp.Allowed || resp.PatchType == nil {
		t.Fatalf("minimal entry: allowed=%v patchType=%v result=%v", resp.Allowed, resp.PatchType, resp.Result)
	}
	m := applyPatch(t, minimal, resp)
	spec := m["spec"].(map[string]any)
	if spec["location"] != "MESH_INTERNAL" || spec["resolution"] != "DNS" {
		t.Errorf("location/resolution = %v/%v", spec["location"], spec["resolution"])
	}
	addrs, _ := spec["addresses"].([]any)
	if len(addrs) != 1 {
		t.Fatalf("addresses = %v", spec["addresses"])
	}
	a := netip.MustParseAddr(addrs[0].(string))
	if want := rules.DefaultVIPSpace().Candidate("httpbin.bar.global"); a != want {
		t.Errorf("VIP %s, want the host's first candidate %s", a, want)
	}
	if h, ok := s.claims.Holder(a); !ok || h.Name != "httpbin-min" || h.Namespace != "foo" {
		t.Errorf("claim of %s held by %+v (%v)", a, h, ok)
	}
	ep := spec["endpoints"].([]any)[0].(map[string]any)
	if p := ep["ports"].(map[string]any)["http1"]; p != float64(15443) {
		t.Errorf("endpoint port = %v", p)
	}

	// The mutated entry passes validation, and claiming its VIP again for
	// the same entry is fine.
	b, _ := json.Marshal(m)
	if resp := post(t, s.validate, review(admissionv1.Create, string(b)), "application/json"); !resp.Allowed {
		t.Fatalf("mutated entry denied: %v", resp.Result)
	}
	// Mutating the mutated entry changes nothing.
	if resp := post(t, s.mutate, review(admissionv1.Create, string(b)), "application/json"); !resp.Allowed || len(resp.Patch) != 0 {
		t.Fatalf("second mutation: allowed=%v patch=%s", resp.Allowed, resp.Patch)
	}
}

func TestMutateNoClaimForInvalidOrDryRun(t *testing.T) {
	s := newServer(rules.ModeDeny)
	bad := strings.Replace(minimal, `"ports":[{`, `"location":"MESH_EXTERNAL","ports":[{`, 1)
	if resp := post(t, s.mutate, review(admissionv1.Create, bad), "application/json"); !resp.Allowed {
		t.Fatalf("mutate denied: %v", resp.Result)
	}
	dry := webhooktest.Review(admissionv1.Create, "foo", "", []byte(minimal), true)
	resp := post(t, s.mutate, dry, "application/json")
	if !resp.Allowed || !strings.Contains(string(resp.Patch), "/spec/addresses") {
		t.Fatalf("dry run: allowed=%v patch=%s; want the address a real create would get", resp.Allowed, resp.Patch)
	}
	if n := s.claims.Len(); n != 0 {
		t.Fatalf("%d claims after an invalid entry and a dry run, want 0", n)
	}
}

func TestValidateClaims(t *testing.T) {
	s := newServer(rules.ModeDeny)
	if resp := post(t, s.validate, review(admissionv1.Create, seed), "application/json"); !resp.Allowed {
		t.Fatalf("seed denied: %v", resp.Result)
	}
	other := strings.Replace(seed, `"name":"httpbin-bar"`, `"name":"other"`, 1)
	resp := post(t, s.validate, review(admissionv1.Create, other), "application/json")
	if resp.Allowed || resp.Result.Code != 422 || !strings.Contains(resp.Result.Message, "spec.addresses[0]") || !strings.Contains(resp.Result.Message, "foo/httpbin-bar") {
		t.Fatalf("second entry with the same VIP: allowed=%v result=%v; want 422 naming foo/httpbin-bar on spec.addresses[0]", resp.Allowed, resp.Result)
	}
	// Dry run of a new address does not claim it.
	dry := strings.Replace(seed, `240.0.0.2`, `240.0.0.99`, 1)
	if resp := post(t, s.validate, webhooktest.Review(admissionv1.Create, "foo", "", []byte(dry), true), "application/json"); !resp.Allowed {
		t.Fatalf("dry run denied: %v", resp.Result)
	}
	if _, ok := s.claims.Holder(netip.MustParseAddr("240.0.0.99")); ok {
		t.Fatal("dry run claimed its address")
	}
	// A denied entry claims nothing.
	post(t, s.validate, review(admissionv1.Create, external), "application/json")
	if _, ok := s.claims.Holder(netip.MustParseAddr("240.0.0.7")); ok {
		t.Fatal("a denied entry claimed its address")
	}
}

func TestWarnMode(t *testing.T) {
	s := newServer(rules.ModeWarn)
	resp := post(t, s.validate, review(admissionv1.Create, external), "application/json")
	if !resp.Allowed {
		t.Fatalf("warn mode denied: %v", resp.Result)
	}
	if w := strings.Join(resp.Warnings, "\n"); !strings.Contains(w, "spec.location") || !strings.Contains(w, "MESH_INTERNAL") {
		t.Fatalf("warnings %q, want the location violation", resp.Warnings)
	}
	// Deny mode gives the same message as the error.
	d := post(t, newServer(rules.ModeDeny).validate, review(admissionv1.Create, external), "application/json")
	if d.Allowed || !strings.Contains(d.Result.Message, resp.Warnings[0]) {
		t.Fatalf("deny message %q does not carry the warning %q", d.Result.Message, resp.Warnings[0])
	}
}

func TestMetrics(t *testing.T) {
	s := newServer(rules.ModeDeny)
	post(t, s.validate, review(admissionv1.Create, local), "application/json")
	post(t, s.validate, review(admissionv1.Create, external), "application/json")
	post(t, s.mutate, review(admissionv1.Create, minimal), "application/json")
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"validate", "CREATE", webhook.VerdictSkipped}, 1},
		{[]string{"validate", "CREATE", webhook.VerdictDenied}, 1},
		{[]string{"mutate", "CREATE", webhook.VerdictPatched}, 1},
	} {
		if got := counterValue(t, s.metrics, c.labels...); got != c.want {
			t.Errorf("admissions%v = %v, want %v", c.labels, got, c.want)
		}
	}
}

func TestGenerateNameDenied(t *testing.T) {
	s := newServer(rules.ModeDeny)
	gen := strings.Replace(minimal, `"name":"httpbin-min"`, `"generateName":"httpbin-"`, 1)
	if resp := post(t, s.mutate, review(admissionv1.Create, gen), "application/json"); !resp.Allowed || strings.Contains(string(resp.Patch), "/spec/addresses") {
		t.Fatalf("mutate of a generateName entry: allowed=%v patch=%s; want defaults without a VIP", resp.Allowed, resp.Patch)
	}
	resp := post(t, s.validate, review(admissionv1.Create, gen), "application/json")
	if resp.Allowed || !strings.Contains(resp.Result.Message, "metadata.name") {
		t.Fatalf("validate of a generateName entry: allowed=%v result=%v; want a denial naming metadata.name", resp.Allowed, resp.Result)
	}
	if s.claims.Len() != 0 {
		t.Fatal("a claim was made for an entry without a name")
	}
}
