package routing

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

func TestParseWeights(t *testing.T) {
	tests := map[string]struct {
		in   []string
		want []Weight
		err  string
	}{
		"seed 70/30":            {in: []string{"v2=70", "v3=30"}, want: []Weight{{"v2", 70}, {"v3", 30}}},
		"one version, all":      {in: []string{"v1"}, want: []Weight{{"v1", 100}}},
		"one version, 100":      {in: []string{"v1=100"}, want: []Weight{{"v1", 100}}},
		"not 100":               {in: []string{"v2=70", "v3=20"}, err: "add up to 90, want 100"},
		"weight missing":        {in: []string{"v2=70", "v3"}, err: "each needs a weight"},
		"not a number":          {in: []string{"v2=seventy"}, err: `weight "seventy"`},
		"over 100":              {in: []string{"v2=170"}, err: "0 to 100"},
		"version twice":         {in: []string{"v2=50", "v2=50"}, err: "twice"},
		"no version":            {in: []string{"=100"}, err: "version is missing"},
		"nothing":               {err: "--to is empty"},
		"zero weight is routed": {in: []string{"v2=100", "v3=0"}, want: []Weight{{"v2", 100}, {"v3", 0}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseWeights(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "--to") {
					t.Fatalf("ParseWeights(%q) error = %v, want one naming --to with %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseWeights(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseWhen(t *testing.T) {
	tests := map[string]struct {
		want  Match
		istio map[string]any
		err   string
	}{
		"header:end-user=jason": {want: Match{Header: "end-user", Op: OpExact, Value: "jason"},
			istio: map[string]any{"headers": map[string]any{"end-user": map[string]any{"exact": "jason"}}}},
		"prefix:user-agent=Mozilla": {want: Match{Header: "user-agent", Op: OpPrefix, Value: "Mozilla"},
			istio: map[string]any{"headers": map[string]any{"user-agent": map[string]any{"prefix": "Mozilla"}}}},
		"regex:cookie=^(.*?;)?(user=jason)(;.*)?$": {want: Match{Header: "cookie", Op: OpRegex, Value: "^(.*?;)?(user=jason)(;.*)?$"},
			istio: map[string]any{"headers": map[string]any{"cookie": map[string]any{"regex": "^(.*?;)?(user=jason)(;.*)?$"}}}},
		"uri-prefix:/api/v2": {want: Match{Op: OpPrefix, Value: "/api/v2"}, istio: map[string]any{"uri": map[string]any{"prefix": "/api/v2"}}},
		"header:end-user":    {err: "a header name and a value"},
		"cookie:x=y":         {err: `unknown kind "cookie"`},
		"uri-prefix:api":     {err: "starts with /"},
		"regex:x=(":          {err: "missing closing"},
		"header:End-User=x":  {err: "lower case"},
		"end-user=jason":     {err: "use header:NAME=VALUE"},
	}
	for in, tc := range tests {
		t.Run(in, func(t *testing.T) {
			got, err := ParseWhen(in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "--when") {
					t.Fatalf("ParseWhen(%q) error = %v, want one naming --when with %q", in, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want || !reflect.DeepEqual(got.istio(), tc.istio) || got.String() != in {
				t.Fatalf("ParseWhen(%q) = %+v (%v), istio %v, String %q", in, got, err, got.istio(), got.String())
			}
		})
	}
}

func TestParseLocality(t *testing.T) {
	f, err := ParseFailover([]string{"region1=region2", "region2=region3"})
	if err != nil || !reflect.DeepEqual(f, []builders.Failover{{From: "region1", To: "region2"}, {From: "region2", To: "region3"}}) {
		t.Fatalf("ParseFailover = %v, %v", f, err)
	}
	if _, err := ParseFailover([]string{"region1"}); err == nil || !strings.Contains(err.Error(), "--failover") {
		t.Fatalf("ParseFailover without a pair: %v", err)
	}
	d, err := ParseDistribute("region1/*=region1/*:80,region2/*:20; region2/*=region2/*:100")
	want := []builders.Distribute{
		{From: "region1/*", To: map[string]uint32{"region1/*": 80, "region2/*": 20}},
		{From: "region2/*", To: map[string]uint32{"region2/*": 100}},
	}
	if err != nil || !reflect.DeepEqual(d, want) {
		t.Fatalf("ParseDistribute = %v, %v; want %v", d, err, want)
	}
	for in, msg := range map[string]string{
		"region1/*=region1/*:80,region2/*:30": "add up to 110",
		"region1/*=region1/*":                 "LOCALITY:WEIGHT",
		"region1/*":                           "FROM=TO",
		"":                                    "empty",
		"a=b:100;a=c:100":                     "given twice",
	} {
		if _, err := ParseDistribute(in); err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), "--distribute") {
			t.Errorf("ParseDistribute(%q) error = %v, want one naming --distribute with %q", in, err, msg)
		}
	}
}

func TestUpsertKeepsOrderAndReplaces(t *testing.T) {
	svc := Service{Name: "helloworld", Namespace: "hello"}
	jason := Match{Header: "end-user", Op: OpExact, Value: "jason"}
	api := Match{Op: OpPrefix, Value: "/api"}
	def := Rule{Destinations: []Destination{{Host: svc.LocalHost(), Subset: "v1"}}}
	toGlobal := Rule{Match: &jason, Destinations: []Destination{{Host: svc.GlobalHost(), Subset: "v2", Weight: 70}, {Host: svc.GlobalHost(), Subset: "v3", Weight: 30}}}
	http := Upsert(nil, def)
	http = Upsert(http, toGlobal)
	http = Upsert(http, Rule{Match: &api, Destinations: []Destination{{Host: svc.GlobalHost(), Subset: "v3"}}})
	names := func(hs []map[string]any) []string {
		var out []string
		for _, h := range hs {
			out = append(out, nameOf(h))
		}
		return out
	}
	if got := names(http); !reflect.DeepEqual(got, []string{"header:end-user=jason", "uri-prefix:/api", "default"}) {
		t.Fatalf("rules = %v, want the matched ones in order, then the default", got)
	}
	// The same match again replaces its rule in place.
	http = Upsert(http, Rule{Match: &jason, Destinations: []Destination{{Host: svc.GlobalHost(), Subset: "v2"}}})
	if got := names(http); !reflect.DeepEqual(got, []string{"header:end-user=jason", "uri-prefix:/api", "default"}) {
		t.Fatalf("rules after replacing = %v", got)
	}
	if got := Subsets(http, svc.GlobalHost()); !reflect.DeepEqual(got, []string{"v2", "v3"}) {
		t.Fatalf("global subsets = %v", got)
	}
	vs := VirtualService(svc, http)
	if hosts, _, _ := unstructuredHosts(vs.Object); !reflect.DeepEqual(hosts, []string{"helloworld.hello.svc.cluster.local", "helloworld.hello.global"}) {
		t.Fatalf("hosts = %v", hosts)
	}
	first := HTTPRules(vs)[0]
	if _, weighted := first["route"].([]any)[0].(map[string]any)["weight"]; weighted {
		t.Fatalf("a single destination carries a weight: %v", first)
	}
	http, found := Remove(http, &api)
	if !found || len(http) != 2 || HasDefault(http) != true {
		t.Fatalf("Remove(api) = %v, %v", names(http), found)
	}
	if _, found := Remove(http, &api); found {
		t.Fatal("removing a rule twice finds it")
	}
}

func unstructuredHosts(obj map[string]any) ([]string, bool, error) {
	spec := obj["spec"].(map[string]any)
	var out []string
	for _, h := range spec["hosts"].([]any) {
		out = append(out, h.(string))
	}
	return out, true, nil
}

func TestUserRule(t *testing.T) {
	rule := func(name, host string, managed bool, subsets ...string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
			"metadata": map[string]any{"name": name, "namespace": "hello"},
			"spec":     map[string]any{"host": host},
		}}
		var ss []any
		for _, s := range subsets {
			ss = append(ss, map[string]any{"name": s, "labels": map[string]any{"version": s}})
		}
		if ss != nil {
			u.Object["spec"].(map[string]any)["subsets"] = ss
		}
		if managed {
			u.SetLabels(map[string]string{rules.ManagedByLabel: rules.ManagedByValue})
		}
		return u
	}
	ours := rule("helloworld-hello-local", "helloworld.hello.svc.cluster.local", true, "v1")
	theirs := rule("zz-helloworld", "helloworld", false, "v1")
	other := rule("aa-other", "other.hello.svc.cluster.local", false)
	all := map[string]*unstructured.Unstructured{"hello/" + ours.GetName(): ours, "hello/" + theirs.GetName(): theirs, "hello/" + other.GetName(): other}
	if got := UserRule(all, "helloworld", "hello", ""); got != theirs {
		t.Fatalf("UserRule = %v, want the user's rule for helloworld (short host), not ours nor another host's", got)
	}
	delete(all, "hello/"+theirs.GetName())
	if got := UserRule(all, "helloworld", "hello", ""); got != nil {
		t.Fatalf("UserRule without a user's rule = %s", got.GetName())
	}
	note := UserRuleNote("cluster1", theirs, builders.Local{Versions: []string{"v1", "v2"}})
	for _, want := range []string{"cluster1: DestinationRule hello/zz-helloworld for helloworld is not managed by kubectl-mesh", "must define subsets v1, v2 (each selecting the Pods' version label)", "; missing now: v2"} {
		if !strings.Contains(note, want) {
			t.Errorf("UserRuleNote = %q, lacks %q", note, want)
		}
	}
	if note := UserRuleNote("cluster1", theirs, builders.Local{Versions: []string{"v1"}}); strings.Contains(note, "missing") {
		t.Errorf("UserRuleNote with every subset defined = %q", note)
	}
}
