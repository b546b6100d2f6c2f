package mesh

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
)

func globalEntry(locality string) Entry {
	return Entry{Namespace: "hello", Name: "helloworld-hello", Hosts: []string{"helloworld.hello.global"},
		Endpoints: []Endpoint{{Address: "192.0.2.20", Labels: map[string]string{"cluster": "cluster2"}, Locality: locality}}}
}

func helloExport(p *builders.LocalityPolicy) builders.Export {
	return builders.Export{Name: "helloworld", Namespace: "hello",
		Ports:    []builders.Port{{Name: "http", Number: 5000, Protocol: "HTTP"}},
		Sources:  []builders.Source{{Cluster: "cluster2", GatewayHost: "192.0.2.20", GatewayPort: 15443, Versions: []string{"v2"}, Locality: "region2"}},
		Locality: p}
}

func TestCheckLocality(t *testing.T) {
	failover := &builders.LocalityPolicy{Failover: []builders.Failover{{From: "region1", To: "region2"}}, Outlier: builders.Outlier{Consecutive5xxErrors: 1, Interval: time.Second, BaseEjectionTime: time.Minute}}
	built := func(p *builders.LocalityPolicy) *unstructured.Unstructured {
		dr, _, err := builders.GlobalDestinationRule(helloExport(p))
		if err != nil {
			t.Fatal(err)
		}
		return dr
	}
	noOutlier := built(failover)
	tp := noOutlier.Object["spec"].(map[string]any)["trafficPolicy"].(map[string]any)
	delete(tp, "outlierDetection")
	dropped := built(failover)
	pl := dropped.Object["spec"].(map[string]any)["trafficPolicy"].(map[string]any)["portLevelSettings"].([]any)[0].(map[string]any)
	delete(pl, "loadBalancer")
	delete(pl, "outlierDetection")
	tests := map[string]struct {
		dr      *unstructured.Unstructured
		entry   Entry
		want    []string // problem kinds
		message string
	}{
		"route's rule":                   {dr: built(failover), entry: globalEntry("region2")},
		"no policy, no locality":         {dr: built(nil), entry: globalEntry("")},
		"failover without outlier":       {dr: noOutlier, entry: globalEntry("region2"), want: []string{ProblemFailoverNoEject}, message: "spec.trafficPolicy.loadBalancer.localityLbSetting.failover without"},
		"port-level setting drops it":    {dr: dropped, entry: globalEntry("region2"), want: []string{ProblemLocalityDropped}, message: "spec.trafficPolicy.portLevelSettings[0] (port 5000) has no localityLbSetting"},
		"endpoints without any locality": {dr: built(failover), entry: globalEntry(""), want: []string{ProblemNoLocality}, message: "192.0.2.20 (cluster2)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := CheckLocality("cluster1", []TrafficRule{TrafficRuleFrom(tc.dr)}, []Entry{tc.entry})
			var kinds []string
			for _, p := range got {
				kinds = append(kinds, p.Kind)
				if p.Fix == "" || p.Object != "destinationrule hello/helloworld-hello-global" {
					t.Errorf("problem without fix or object: %+v", p)
				}
			}
			if strings.Join(kinds, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("kinds = %v, want %v: %+v", kinds, tc.want, got)
			}
			if tc.message != "" && !strings.Contains(got[0].Message, tc.message) {
				t.Fatalf("message = %q, want it to contain %q", got[0].Message, tc.message)
			}
		})
	}
}

func TestCheckRouteSubsets(t *testing.T) {
	vs := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": "helloworld-hello-route", "namespace": "hello"},
		"spec": map[string]any{"http": []any{
			map[string]any{"route": []any{
				map[string]any{"destination": map[string]any{"host": "helloworld.hello.global", "subset": "v2"}},
				map[string]any{"destination": map[string]any{"host": "helloworld.hello.global", "subset": "v9"}},
			}},
			map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "helloworld", "subset": "v1"}}}},
			map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "reviews.shop.global"}}}},
		}},
	}}
	dests := VirtualServiceDestinations(vs)
	if len(dests) != 4 || dests[2].Host != "helloworld.hello.svc.cluster.local" {
		t.Fatalf("destinations = %+v", dests)
	}
	drs := []DestRule{
		{Namespace: "hello", Name: "g", Host: "helloworld.hello.global", Subsets: []Subset{{Name: "v2"}}},
		{Namespace: "hello", Name: "l", Host: "helloworld", Subsets: []Subset{{Name: "v1"}}},
	}
	got := CheckRouteSubsets("cluster1", dests, drs, []Entry{globalEntry("region2")})
	if len(got) != 2 || !strings.Contains(got[0].Message, "spec.http[0].route[1].destination routes to subset v9 of helloworld.hello.global") ||
		!strings.Contains(got[1].Message, "reviews.shop.global, which no ServiceEntry") {
		t.Fatalf("problems = %+v", got)
	}
}
