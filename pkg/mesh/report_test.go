package mesh

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckGlobalDNS(t *testing.T) {
	global := []Entry{{Namespace: "foo", Name: "httpbin-bar", Hosts: []string{"httpbin.bar.global"}}}
	local := []Entry{{Namespace: "foo", Name: "db", Hosts: []string{"db.example.com"}}}
	tests := map[string]struct {
		cs      ClusterStatus
		entries []Entry
		wantFix string // "" means no problem
	}{
		"forwarded to istiocoredns":     {cs: ClusterStatus{IstioCoreDNS: "10.0.0.53", GlobalDNS: true}, entries: global},
		"istio's DNS proxy on":          {cs: ClusterStatus{DNSProxy: true, GlobalDNS: true}, entries: global},
		"no .global entry":              {entries: local},
		"DNS unknown":                   {cs: ClusterStatus{DNSError: "forbidden"}, entries: global},
		"istiocoredns, not forwarded":   {cs: ClusterStatus{IstioCoreDNS: "10.0.0.53", DNSConfigMap: "CoreDNS kube-system/coredns"}, entries: global, wantFix: "kubectl mesh link --from cluster1"},
		"no istiocoredns, no DNS proxy": {entries: global, wantFix: "ISTIO_META_DNS_CAPTURE"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.cs.Context = "cluster1"
			f := &ClusterFacts{Status: tc.cs, Entries: tc.entries}
			p, ok := checkGlobalDNS(f)
			if ok != (tc.wantFix != "") {
				t.Fatalf("checkGlobalDNS(%+v) = %+v, %v; want a problem: %v", f, p, ok, tc.wantFix != "")
			}
			if ok && (p.Kind != ProblemNoGlobalDNS || p.Object != "serviceentry foo/httpbin-bar" || !strings.Contains(p.Message, "httpbin.bar.global") || !strings.Contains(p.Fix, tc.wantFix)) {
				t.Fatalf("problem = %+v, want one on serviceentry foo/httpbin-bar whose fix mentions %q", p, tc.wantFix)
			}
		})
	}
}

// BuildReport works on fetched data alone: roots, links to reported and
// unreported peers, stale entries against the listed Services, and the
// remote secrets' peers.
func TestBuildReport(t *testing.T) {
	stale := Entry{Namespace: "foo", Name: "gone-bar", Hosts: []string{"gone.bar.global"}, Managed: true, SourceClusters: []string{"c2"}, Source: "bar/gone"}
	kept := Entry{Namespace: "foo", Name: "httpbin-bar", Hosts: []string{"httpbin.bar.global"}, Managed: true, SourceClusters: []string{"c2"}, Source: "bar/httpbin"}
	c1 := &ClusterFacts{
		Status:  ClusterStatus{Context: "c1", RootFingerprints: []string{"R1"}, GlobalDNS: true, RemoteSecrets: []RemoteSecretStatus{{Cluster: "c1", ClusterName: "cluster2", Server: "https://c2.example:6443/"}}},
		Entries: []Entry{stale, kept},
		Records: []Record{{Peer: "c2", Gateway: "192.0.2.2:15443"}, {Peer: "c3"}, {Peer: "c4"}},
	}
	c2 := &ClusterFacts{
		Status: ClusterStatus{Context: "c2", RootFingerprints: []string{"R2", "R1"}, Gateway: "192.0.2.2:15443"},
		Server: "https://C2.example:6443",
		Routes: RouteView{Services: map[string][]uint32{"bar/httpbin": {8000}}},
	}
	// c3 and c4 are linked but not reported: they were asked.
	rep := BuildReport([]*ClusterFacts{c1, c2}, map[string]error{"c3": nil, "c4": errors.New("connection refused")}, time.Now())

	if !rep.Clusters[0].RootsMatch || !rep.Clusters[1].RootsMatch {
		t.Errorf("c1 (R1) and c2 (R2, R1) share R1, but RootsMatch = %v, %v", rep.Clusters[0].RootsMatch, rep.Clusters[1].RootsMatch)
	}
	if c1.Status.RootsMatch || c1.Status.RemoteSecrets[0].Peer != "" {
		t.Error("BuildReport changed the fetched rows instead of its own copies")
	}
	if got := rep.Clusters[0].RemoteSecrets[0].Peer; got != "c2" {
		t.Errorf("the remote secret for https://c2.example:6443/ reaches %q, want c2 (servers compare without case and trailing slash)", got)
	}
	want := map[string]LinkStatus{
		"c2": {From: "c1", To: "c2", Gateway: "192.0.2.2:15443", GatewayNow: "192.0.2.2:15443", Reachable: true},
		"c3": {From: "c1", To: "c3", Reachable: true},
		"c4": {From: "c1", To: "c4", Error: "connection refused"},
	}
	if len(rep.Links) != 3 {
		t.Fatalf("links = %+v, want 3", rep.Links)
	}
	for _, l := range rep.Links {
		w := want[l.To]
		l.RootsMatch = nil
		if l != w {
			t.Errorf("link to %s = %+v, want %+v", l.To, l, w)
		}
	}
	if m := rep.Links[0].RootsMatch; m == nil || !*m {
		t.Errorf("link to the reported c2 says roots match %v, want yes", m)
	}
	var kinds []string
	for _, p := range rep.Problems {
		kinds = append(kinds, p.Kind+" "+p.Object)
	}
	got := strings.Join(kinds, "\n")
	for _, w := range []string{ProblemStaleEntry + " serviceentry foo/gone-bar", ProblemPeerUnreachable + " configmap mesh-system/" + RecordName("c4")} {
		if !strings.Contains(got, w) {
			t.Errorf("problems lack %q:\n%s", w, got)
		}
	}
	for _, nw := range []string{"foo/httpbin-bar", RecordName("c3")} {
		if strings.Contains(got, ProblemStaleEntry+" serviceentry "+nw) || strings.Contains(got, ProblemPeerUnreachable+" configmap mesh-system/"+nw) {
			t.Errorf("problems name %s, which is fine:\n%s", nw, got)
		}
	}
}
