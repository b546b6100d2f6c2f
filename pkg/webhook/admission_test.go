package webhook_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook/webhooktest"
)

// oversized is an entry of ports × endpoints without endpoint ports, which
// the old mutator filled into ports × endpoints map entries before anything
// checked sizes.
func oversized(ports, endpoints int) string {
	var ps, es []string
	for i := range ports {
		ps = append(ps, fmt.Sprintf(`{"name":"p%d","number":%d,"protocol":"TCP"}`, i, 1000+i))
	}
	for i := range endpoints {
		es = append(es, fmt.Sprintf(`{"address":"10.%d.%d.1","labels":{"cluster":"c%d"}}`, i>>8, i&255, i))
	}
	return `{"apiVersion":"networking.istio.io/v1","kind":"ServiceEntry","metadata":{"name":"big","namespace":"foo"},"spec":{"hosts":["big.bar.global"],"ports":[` +
		strings.Join(ps, ",") + `],"endpoints":[` + strings.Join(es, ",") + `]}}`
}

func TestOversizedEntryRefusedBeforeDefaulting(t *testing.T) {
	body := webhooktest.Review(admissionv1.Create, "foo", "big", []byte(oversized(1000, 1000)), false)
	deny := webhooktest.Handlers(rules.ModeDeny)
	for name, h := range map[string]http.Handler{"mutate": deny.Mutate, "validate": deny.Validate} {
		resp := post(t, h, body, "application/json")
		if resp.Allowed || resp.Result.Code != 422 || len(resp.Patch) != 0 {
			t.Fatalf("%s: allowed=%v code=%d patch=%d bytes; want a 422 without a patch", name, resp.Allowed, resp.Result.Code, len(resp.Patch))
		}
		var fields []string
		for _, c := range resp.Result.Details.Causes {
			fields = append(fields, c.Field)
		}
		if !slices.Equal(fields, []string{"spec.ports", "spec.endpoints"}) || !strings.Contains(resp.Result.Message, "must have at most 128 items") {
			t.Errorf("%s: causes on %v, message %q; want spec.ports and spec.endpoints with their limits", name, fields, resp.Result.Message)
		}
	}
	if deny.Claims.Len() != 0 {
		t.Errorf("an oversized entry left %d claims", deny.Claims.Len())
	}
	warn := webhooktest.Handlers(rules.ModeWarn)
	resp := post(t, warn.Mutate, body, "application/json")
	if !resp.Allowed || len(resp.Patch) != 0 || len(resp.Warnings) != 2 {
		t.Errorf("warn mode: allowed=%v patch=%d bytes warnings=%q; want admitted untouched with the two size warnings", resp.Allowed, len(resp.Patch), resp.Warnings)
	}
}

// TestOversizedRuleRefusedByBothHandlers: the mutating handler checks a
// rule's sizes before defaulting, the validating one leaves them to the
// validator (one check per request); both answer the same 422.
func TestOversizedRuleRefusedByBothHandlers(t *testing.T) {
	var subsets []string
	for i := range rules.MaxSubsets + 1 {
		subsets = append(subsets, fmt.Sprintf(`{"name":"v%d","labels":{"cluster":"cluster2"}}`, i))
	}
	obj := `{"apiVersion":"networking.istio.io/v1","kind":"DestinationRule","metadata":{"name":"big","namespace":"foo"},"spec":{"host":"httpbin.bar.global","subsets":[` + strings.Join(subsets, ",") + `]}}`
	body := webhooktest.RuleReview(admissionv1.Create, "foo", "big", []byte(obj), false)
	s := withEntry(webhooktest.Handlers(rules.ModeDeny))
	for name, h := range map[string]http.Handler{"mutate": s.MutateRule, "validate": s.ValidateRule} {
		resp := post(t, h, body, "application/json")
		if resp.Allowed || resp.Result.Code != 422 || len(resp.Patch) != 0 || len(resp.Result.Details.Causes) != 1 || resp.Result.Details.Causes[0].Field != "spec.subsets" {
			t.Errorf("%s: allowed=%v result=%v patch=%d bytes; want one 422 cause on spec.subsets, no patch", name, resp.Allowed, resp.Result, len(resp.Patch))
		}
	}
}

func TestOneWarningPerKind(t *testing.T) {
	obj := strings.ReplaceAll(oversized(2, 40), `"labels":{"cluster":"c`, `"labels":{"zone":"c`)
	resp := post(t, webhooktest.Handlers(rules.ModeWarn).Validate, webhooktest.Review(admissionv1.Create, "foo", "big", []byte(obj), true), "application/json")
	var label []string
	for _, w := range resp.Warnings {
		if strings.Contains(w, `no "cluster" label`) {
			label = append(label, w)
		}
	}
	if len(label) != 1 || !strings.Contains(label[0], "spec.endpoints[0,1,2,3,4,5,6,7,… 32 more]") {
		t.Errorf("warnings %q; want one cluster-label warning naming the endpoints", resp.Warnings)
	}
}

const ruleSeedMistake = `{"apiVersion":"networking.istio.io/v1","kind":"DestinationRule","metadata":{"name":"httpbin-bar-global","namespace":"foo"},
"spec":{"host":"httpbin.bar.global","trafficPolicy":{"tls":{"mode":"ISTIO_MUTUAL"}},"subsets":[{"name":"v2","labels":{"version":"v2"}}]}}`

const ruleBare = `{"apiVersion":"networking.istio.io/v1","kind":"DestinationRule","metadata":{"name":"httpbin-bar-global","namespace":"foo"},
"spec":{"host":"httpbin.bar.global","subsets":[{"name":"v2","labels":{"cluster":"cluster2"}}]}}`

func withEntry(s webhooktest.Set) webhooktest.Set {
	s.Index.AddEntry(webhook.EntryRef{Entry: rules.Entry{
		Namespace: "foo", Name: "httpbin-bar", Host: "httpbin.bar.global", Ports: []uint32{8000, 9000},
		EndpointLabels: []map[string]string{{"cluster": "cluster2"}, {"cluster": "cluster3"}},
	}})
	return s
}

func TestDestinationRuleSeedMistake(t *testing.T) {
	body := webhooktest.RuleReview(admissionv1.Create, "foo", "httpbin-bar-global", []byte(ruleSeedMistake), false)
	resp := post(t, withEntry(webhooktest.Handlers(rules.ModeDeny)).ValidateRule, body, "application/json")
	if resp.Allowed || resp.Result.Code != 422 {
		t.Fatalf("seed rule: allowed=%v; want 422", resp.Allowed)
	}
	c := resp.Result.Details.Causes[0]
	for _, want := range []string{"source cluster's own DestinationRule", "cluster: cluster2 or cluster: cluster3"} {
		if c.Field != "spec.subsets[0].labels" || !strings.Contains(c.Message, want) {
			t.Errorf("cause %s: %s; want spec.subsets[0].labels saying %q", c.Field, c.Message, want)
		}
	}
	warn := post(t, withEntry(webhooktest.Handlers(rules.ModeWarn)).ValidateRule, body, "application/json")
	if !warn.Allowed || len(warn.Warnings) == 0 || !strings.Contains(strings.Join(warn.Warnings, "\n"), "spec.subsets[0].labels") {
		t.Errorf("warn mode: allowed=%v warnings=%q; want admitted with the subset warning", warn.Allowed, warn.Warnings)
	}
}

func TestDestinationRuleFilledAndChecked(t *testing.T) {
	s := withEntry(webhooktest.Handlers(rules.ModeDeny))
	body := webhooktest.RuleReview(admissionv1.Create, "foo", "httpbin-bar-global", []byte(ruleBare), false)
	resp := post(t, s.MutateRule, body, "application/json")
	if !resp.Allowed {
		t.Fatalf("bare rule refused: %v", resp.Result)
	}
	got := applyPatch(t, ruleBare, resp)
	spec := got["spec"].(map[string]any)
	if m := spec["trafficPolicy"].(map[string]any)["tls"].(map[string]any)["mode"]; m != "ISTIO_MUTUAL" {
		t.Errorf("tls.mode = %v", m)
	}
	snis := func(tp any) []string {
		var out []string
		for _, p := range tp.(map[string]any)["portLevelSettings"].([]any) {
			tls := p.(map[string]any)["tls"].(map[string]any)
			out = append(out, tls["mode"].(string)+" "+tls["sni"].(string))
		}
		return out
	}
	want := []string{"ISTIO_MUTUAL outbound_.8000_._.httpbin.bar.svc.cluster.local", "ISTIO_MUTUAL outbound_.9000_._.httpbin.bar.svc.cluster.local"}
	if got := snis(spec["trafficPolicy"]); !slices.Equal(got, want) {
		t.Errorf("rule SNIs %q, want %q", got, want)
	}
	want = []string{"ISTIO_MUTUAL outbound_.8000_.v2_.httpbin.bar.svc.cluster.local", "ISTIO_MUTUAL outbound_.9000_.v2_.httpbin.bar.svc.cluster.local"}
	if got := snis(spec["subsets"].([]any)[0].(map[string]any)["trafficPolicy"]); !slices.Equal(got, want) {
		t.Errorf("subset SNIs %q, want %q", got, want)
	}
	// What the mutator filled, the validator admits without warnings.
	mutated := webhooktest.RuleReview(admissionv1.Create, "foo", "httpbin-bar-global", mustJSON(t, got), false)
	if v := post(t, s.ValidateRule, mutated, "application/json"); !v.Allowed || len(v.Warnings) != 0 {
		t.Errorf("filled rule: allowed=%v warnings=%q", v.Allowed, v.Warnings)
	}

	for name, tc := range map[string]struct{ from, to, field string }{
		"not mutual":    {`"mode":"ISTIO_MUTUAL"`, `"mode":"SIMPLE"`, "spec.subsets[0].trafficPolicy.portLevelSettings[0].tls.mode"},
		"global SNI":    {`outbound_.8000_._.httpbin.bar.svc.cluster.local`, `httpbin.bar.global`, "spec.trafficPolicy.portLevelSettings[0].tls.sni"},
		"wrong subset":  {`outbound_.8000_.v2_.httpbin`, `outbound_.8000_.v1_.httpbin`, "spec.subsets[0].trafficPolicy.portLevelSettings[0].tls.sni"},
		"wrong service": {`outbound_.9000_._.httpbin.bar`, `outbound_.9000_._.other.bar`, "spec.trafficPolicy.portLevelSettings[1].tls.sni"},
	} {
		obj := strings.Replace(string(mustJSON(t, got)), tc.from, tc.to, 1)
		v := post(t, s.ValidateRule, webhooktest.RuleReview(admissionv1.Create, "foo", "r", []byte(obj), false), "application/json")
		if v.Allowed || v.Result.Details.Causes[0].Field != tc.field {
			t.Errorf("%s: allowed=%v result=%v; want denied on %s", name, v.Allowed, v.Result, tc.field)
		}
	}
}

func TestDestinationRuleBeforeItsEntry(t *testing.T) {
	s := webhooktest.Handlers(rules.ModeDeny)
	body := webhooktest.RuleReview(admissionv1.Create, "foo", "httpbin-bar-global", []byte(ruleSeedMistake), false)
	if v := post(t, s.ValidateRule, body, "application/json"); !v.Allowed || !strings.Contains(strings.Join(v.Warnings, ""), "no ServiceEntry for httpbin.bar.global") {
		t.Errorf("rule without entry: allowed=%v warnings=%q; want admitted with a warning", v.Allowed, v.Warnings)
	}
}

func TestDeleteReleasesVIP(t *testing.T) {
	s := webhooktest.Handlers(rules.ModeDeny)
	addr := netip.MustParseAddr("240.0.0.2")
	if resp := post(t, s.Validate, review(admissionv1.Create, seed), "application/json"); !resp.Allowed {
		t.Fatalf("seed refused: %v", resp.Result)
	}
	if _, ok := s.Claims.Holder(addr); !ok {
		t.Fatal("seed's VIP not claimed")
	}
	old := strings.Replace(seed, `"namespace":"foo"`, `"namespace":"foo","uid":"u-old"`, 1)
	// A dry-run delete releases nothing.
	if resp := post(t, s.Validate, webhooktest.DeleteReview("foo", "httpbin-bar", []byte(old), true), "application/json"); !resp.Allowed {
		t.Fatalf("dry-run delete refused: %v", resp.Result)
	}
	if _, ok := s.Claims.Holder(addr); !ok {
		t.Fatal("a dry-run delete released the VIP")
	}
	if resp := post(t, s.Validate, webhooktest.DeleteReview("foo", "httpbin-bar", []byte(old), false), "application/json"); !resp.Allowed {
		t.Fatalf("delete refused: %v", resp.Result)
	}
	if h, ok := s.Claims.Holder(addr); ok {
		t.Fatalf("VIP still held by %v after the delete", h)
	}
	other := strings.Replace(seed, `"name":"httpbin-bar"`, `"name":"other"`, 1)
	if resp := post(t, s.Validate, webhooktest.Review(admissionv1.Create, "foo", "other", []byte(other), false), "application/json"); !resp.Allowed {
		t.Errorf("re-create with the same address right after the delete refused: %v", resp.Result)
	}
	// The claim of a newer entry of that name is kept.
	if err := s.Claims.Claim(t.Context(), netip.MustParseAddr("240.0.0.3"), vip.Owner{Namespace: "foo", Name: "n", UID: "new"}, false); err != nil {
		t.Fatal(err)
	}
	stale := `{"metadata":{"name":"n","namespace":"foo","uid":"older"},"spec":{"hosts":["n.foo.global"]}}`
	post(t, s.Validate, webhooktest.DeleteReview("foo", "n", []byte(stale), false), "application/json")
	if _, ok := s.Claims.Holder(netip.MustParseAddr("240.0.0.3")); !ok {
		t.Error("the delete of an older entry released its successor's claim")
	}
}

func TestOneHostOneEntry(t *testing.T) {
	for name, tc := range map[string]struct {
		holderNS, holderExport string
		ns                     string
		denied                 bool
	}{
		"same namespace":                      {"foo", "", "foo", true},
		"exported everywhere":                 {"bar", "*", "foo", true},
		"both private to their own namespace": {"bar", ".", "foo", false},
	} {
		t.Run(name, func(t *testing.T) {
			s := webhooktest.Handlers(rules.ModeDeny)
			var export []string
			if tc.holderExport != "" {
				export = []string{tc.holderExport}
			}
			s.Index.AddEntry(webhook.EntryRef{Entry: rules.Entry{Namespace: tc.holderNS, Name: "holder", Host: "httpbin.bar.global"}, ExportTo: export})
			obj := seed
			if tc.holderExport == "." {
				obj = strings.Replace(seed, `"spec":{`, `"spec":{"exportTo":["."],`, 1)
			}
			resp := post(t, s.Validate, webhooktest.Review(admissionv1.Create, tc.ns, "httpbin-bar", []byte(obj), false), "application/json")
			if resp.Allowed == tc.denied {
				t.Fatalf("allowed=%v, want denied=%v: %v", resp.Allowed, tc.denied, resp.Result)
			}
			if tc.denied && !strings.Contains(resp.Result.Message, "already held by ServiceEntry "+tc.holderNS+"/holder") {
				t.Errorf("message %q does not name the holder", resp.Result.Message)
			}
			if tc.denied && s.Claims.Len() != 0 {
				t.Error("a refused duplicate claimed its VIP")
			}
		})
	}
}

func TestHandWrittenEntryWithoutRuleWarned(t *testing.T) {
	s := webhooktest.Handlers(rules.ModeDeny)
	has := func(resp *admissionv1.AdmissionResponse) bool {
		return strings.Contains(strings.Join(resp.Warnings, "\n"), "no DestinationRule for httpbin.bar.global")
	}
	if resp := post(t, s.Validate, review(admissionv1.Create, seed), "application/json"); !resp.Allowed || !has(resp) {
		t.Errorf("allowed=%v warnings=%q; want the no-DestinationRule warning", resp.Allowed, resp.Warnings)
	}
	managed := strings.Replace(seed, `"namespace":"foo"`, `"namespace":"foo","labels":{"app.kubernetes.io/managed-by":"kubectl-mesh"}`, 1)
	if resp := post(t, s.Validate, review(admissionv1.Update, managed), "application/json"); has(resp) {
		t.Errorf("an entry kubectl mesh wrote was warned: %q", resp.Warnings)
	}
	s.Index.AddRule("httpbin.bar.global", "foo")
	if resp := post(t, s.Validate, review(admissionv1.Update, seed), "application/json"); has(resp) {
		t.Errorf("warned although a DestinationRule exists: %q", resp.Warnings)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDestinationRuleNewSourceWarned: export writes a new source's rule
// (a subset on cluster: cluster4) just before the entry that adds the
// endpoint; that is a warning, not a denial.
func TestDestinationRuleNewSourceWarned(t *testing.T) {
	rule := strings.Replace(ruleBare, `"cluster":"cluster2"`, `"cluster":"cluster4"`, 1)
	v := post(t, withEntry(webhooktest.Handlers(rules.ModeDeny)).ValidateRule, webhooktest.RuleReview(admissionv1.Create, "foo", "r", []byte(strings.Replace(rule, `"host":"httpbin.bar.global"`, `"host":"httpbin.bar.global","trafficPolicy":{"tls":{"mode":"ISTIO_MUTUAL"}}`, 1)), false), "application/json")
	if !v.Allowed || !strings.Contains(strings.Join(v.Warnings, "\n"), "carries {cluster: cluster4} yet") {
		t.Errorf("allowed=%v warnings=%q; want admitted with a warning", v.Allowed, v.Warnings)
	}
}
