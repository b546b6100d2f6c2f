package plugin

import (
	"strings"
	"testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
)

func TestCheckGlobalDNS(t *testing.T) {
	global := []mesh.Entry{{Namespace: "foo", Name: "httpbin-bar", Hosts: []string{"httpbin.bar.global"}}}
	local := []mesh.Entry{{Namespace: "foo", Name: "db", Hosts: []string{"db.example.com"}}}
	tests := map[string]struct {
		cs      ClusterStatus
		wantFix string // "" means no problem
	}{
		"forwarded to istiocoredns":     {cs: ClusterStatus{IstioCoreDNS: "10.0.0.53", GlobalDNS: true, entries: global}},
		"istio's DNS proxy on":          {cs: ClusterStatus{DNSProxy: true, GlobalDNS: true, entries: global}},
		"no .global entry":              {cs: ClusterStatus{entries: local}},
		"DNS unknown":                   {cs: ClusterStatus{DNSError: "forbidden", entries: global}},
		"istiocoredns, not forwarded":   {cs: ClusterStatus{IstioCoreDNS: "10.0.0.53", DNSConfigMap: "CoreDNS kube-system/coredns", entries: global}, wantFix: "kubectl mesh link --from cluster1"},
		"no istiocoredns, no DNS proxy": {cs: ClusterStatus{entries: global}, wantFix: "ISTIO_META_DNS_CAPTURE"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.cs.Context = "cluster1"
			p, ok := checkGlobalDNS(&tc.cs)
			if ok != (tc.wantFix != "") {
				t.Fatalf("checkGlobalDNS(%+v) = %+v, %v; want a problem: %v", tc.cs, p, ok, tc.wantFix != "")
			}
			if ok && (p.Kind != mesh.ProblemNoGlobalDNS || p.Object != "serviceentry foo/httpbin-bar" || !strings.Contains(p.Message, "httpbin.bar.global") || !strings.Contains(p.Fix, tc.wantFix)) {
				t.Fatalf("problem = %+v, want one on serviceentry foo/httpbin-bar whose fix mentions %q", p, tc.wantFix)
			}
		})
	}
}
