package mesh

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/dns"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

func TestRecordRoundTrip(t *testing.T) {
	r := Record{
		Peer: "arn:aws:eks:eu-west-1:123:cluster/Prod", Server: "https://x", Gateway: "gw:15443",
		LinkedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		DNS:      &dns.Change{Target: dns.Target{Namespace: "kube-system", Name: "coredns", Kind: dns.CoreDNS}, Key: "Corefile", Before: "a", After: "b", IP: "10.0.0.1"},
	}
	cm, err := r.ConfigMap()
	if err != nil {
		t.Fatal(err)
	}
	if cm.Name != "mesh-link-arn-aws-eks-eu-west-1-123-cluster-prod" || cm.Namespace != rules.MeshNamespace || cm.Labels[rules.ManagedByLabel] != rules.ManagedByValue {
		t.Fatalf("record metadata = %s/%s %v", cm.Namespace, cm.Name, cm.Labels)
	}
	back, err := RecordFromConfigMap(cm)
	if err != nil {
		t.Fatal(err)
	}
	if !back.SameLink(r) || !back.LinkedAt.Equal(r.LinkedAt) {
		t.Fatalf("round trip: %+v\nwant %+v", back, r)
	}
	later := r
	later.LinkedAt = later.LinkedAt.Add(time.Hour)
	if !later.SameLink(r) {
		t.Fatal("SameLink must ignore the time")
	}
	later.Gateway = "other:15443"
	if later.SameLink(r) {
		t.Fatal("SameLink must see a new gateway")
	}
	cm.Data[keyRecord] = "{"
	if _, err := RecordFromConfigMap(cm); err == nil || !strings.Contains(err.Error(), "link again") {
		t.Fatalf("damaged record: %v", err)
	}
}

func TestDNSLabel(t *testing.T) {
	tests := map[string]string{
		"cluster1":                  "cluster1",
		"kind-Cluster_2":            "kind-cluster-2",
		"user@prod.example.com":     "user-prod-example-com",
		"---":                       "peer",
		strings.Repeat("a", 80):     strings.Repeat("a", 63-len(RecordPrefix)),
		"gke_proj_europe-west1_c-1": "gke-proj-europe-west1-c-1",
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			if got := DNSLabel(in); got != want {
				t.Fatalf("DNSLabel(%q) = %q, want %q", in, got, want)
			}
		})
	}
}

func TestServesLocalPassthrough(t *testing.T) {
	ingress := map[string]string{"app": "istio-ingressgateway", "istio": "ingressgateway"}
	eastwest := map[string]string{"app": "istio-eastwestgateway", "istio": "eastwestgateway"}
	gw := func(mode string, selector map[string]string, hosts ...any) *unstructured.Unstructured {
		sel := map[string]any{}
		for k, v := range selector {
			sel[k] = v
		}
		return &unstructured.Unstructured{Object: map[string]any{
			"metadata": map[string]any{"name": "gw", "namespace": "istio-system"},
			"spec": map[string]any{"selector": sel, "servers": []any{
				map[string]any{"port": map[string]any{"number": int64(15443)}, "tls": map[string]any{"mode": mode}, "hosts": hosts},
			}},
		}}
	}
	tests := map[string]struct {
		gw     *unstructured.Unstructured
		labels map[string]string
		want   bool
	}{
		"ours":                         {PassthroughGateway(CrossNetworkGateway, LocalHosts, DefaultGatewaySelector), ingress, true},
		"ours, other pods":             {PassthroughGateway(CrossNetworkGateway, LocalHosts, DefaultGatewaySelector), eastwest, false},
		"istio's cross-network":        {gw("AUTO_PASSTHROUGH", map[string]string{"istio": "eastwestgateway"}, "*.local"), eastwest, true},
		"any host":                     {gw("AUTO_PASSTHROUGH", map[string]string{"istio": "eastwestgateway"}, "*"), eastwest, true},
		"any namespace":                {gw("AUTO_PASSTHROUGH", map[string]string{"istio": "eastwestgateway"}, "*/*.local"), eastwest, true},
		"one namespace only":           {gw("AUTO_PASSTHROUGH", map[string]string{"istio": "eastwestgateway"}, "bar/*.local"), eastwest, false},
		"*.global (older link)":        {PassthroughGateway(CrossNetworkGateway, GlobalHosts, DefaultGatewaySelector), ingress, false},
		"SIMPLE TLS is no passthrough": {gw("SIMPLE", map[string]string{"istio": "eastwestgateway"}, "*.local"), eastwest, false},
		"no selector: every gateway":   {gw("AUTO_PASSTHROUGH", nil, "*.local"), eastwest, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := ServesLocalPassthrough(tc.gw, tc.labels); got != tc.want {
				t.Fatalf("ServesLocalPassthrough(%v, %v) = %v, want %v", tc.gw.Object["spec"], tc.labels, got, tc.want)
			}
		})
	}
	old := PassthroughGateway(CrossNetworkGateway, GlobalHosts, DefaultGatewaySelector)
	if !IsGlobalPassthrough(old) {
		t.Fatal("the *.global Gateway of an older link is not recognised")
	}
	if IsGlobalPassthrough(PassthroughGateway(CrossNetworkGateway, LocalHosts, DefaultGatewaySelector)) {
		t.Fatal("a *.local Gateway taken for an old *.global one")
	}
	unmanaged := old.DeepCopy()
	unmanaged.SetLabels(nil)
	if IsGlobalPassthrough(unmanaged) {
		t.Fatal("a *.global Gateway kubectl-mesh did not write must be left alone")
	}
}

func TestRemoteKubeconfig(t *testing.T) {
	b, err := RemoteKubeconfig("cluster2", "https://10.0.0.1:6443", []byte("CA"), "tok")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != "cluster2" || cfg.Clusters["cluster2"].Server != "https://10.0.0.1:6443" || cfg.AuthInfos["cluster2"].Token != "tok" {
		t.Fatalf("kubeconfig = %+v", cfg)
	}
	if _, err := RemoteKubeconfig("cluster2", "", nil, "tok"); err == nil {
		t.Fatal("want an error without a server")
	}
	s := RemoteSecret("cluster2", b)
	if s.Labels[MultiClusterLabel] != "true" || s.Annotations[ClusterAnnotation] != "cluster2" || s.Name != "istio-remote-secret-cluster2" {
		t.Fatalf("remote secret = %+v", s.ObjectMeta)
	}
}

func entry(ns, name, host string, addrs []string, managed bool, eps ...Endpoint) Entry {
	e := Entry{Namespace: ns, Name: name, Hosts: []string{host}, Addresses: addrs, Managed: managed, Endpoints: eps}
	return e
}

func ep(addr, cluster string, port uint32) Endpoint {
	return Endpoint{Address: addr, Labels: map[string]string{rules.ClusterLabel: cluster}, Ports: map[string]uint32{"http": port}}
}

func TestChecks(t *testing.T) {
	good := entry("foo", "httpbin-bar", "httpbin.bar.global", []string{"240.0.0.2"}, true, ep("gw2", "cluster2", 15443))
	good.Source = "bar/httpbin"
	gateways := map[string]GatewayAddress{"cluster2": {Host: "gw2", Port: 15443}}
	services := map[string]bool{"cluster2/bar/httpbin": true}
	lookup := func(c, ns, n string) (bool, bool) {
		if c != "cluster2" {
			return false, false
		}
		return services[c+"/"+ns+"/"+n], true
	}
	drGood := DestRule{Namespace: "foo", Name: "dr", Host: "httpbin.bar.global", Subsets: []Subset{{Name: "v1", Labels: map[string]string{"cluster": "cluster2"}}}}
	tests := map[string]struct {
		entries  []Entry
		drs      []DestRule
		wantKind string // "" for no problem
		wantText string
	}{
		"clean":         {entries: []Entry{good}, drs: []DestRule{drGood}},
		"duplicate VIP": {entries: []Entry{good, entry("x", "y", "y.x.svc.cluster.local", []string{"240.0.0.2"}, false)}, wantKind: ProblemDuplicateVIP, wantText: "240.0.0.2"},
		"same VIP twice in one entry is not a duplicate": {entries: []Entry{entry("x", "y", "y.x.global", []string{"240.0.0.3", "240.0.0.3"}, false)}},
		"VIP in Istio's range":                           {entries: []Entry{entry("x", "y", "y.x.global", []string{"240.240.1.1"}, false)}, wantKind: ProblemInvalidVIP, wantText: "240.240.1.1"},
		"VIP not class E":                                {entries: []Entry{entry("x", "y", "y.x.global", []string{"10.1.1.1"}, false)}, wantKind: ProblemInvalidVIP, wantText: "10.1.1.1"},
		"non-global entries may use any VIP":             {entries: []Entry{entry("x", "y", "db.example.com", []string{"10.1.1.1"}, false)}},
		"stale":                                          {entries: []Entry{entry("foo", "gone", "gone.bar.global", nil, true, ep("gw2", "cluster2", 15443))}, wantKind: ProblemStaleEntry, wantText: "bar/gone"},
		"stale unknown when source unknown":              {entries: []Entry{entry("foo", "gone", "gone.bar.global", nil, true, ep("gw9", "cluster9", 15443))}},
		"unmanaged entries are never stale":              {entries: []Entry{entry("foo", "gone", "gone.bar.global", nil, false, ep("gw2", "cluster2", 15443))}},
		"old gateway address":                            {entries: []Entry{entry("foo", "h", "httpbin.bar.global", nil, true, ep("203.0.113.1", "cluster2", 15443))}, wantKind: ProblemGatewayMismatch, wantText: "203.0.113.1:15443"},
		"old gateway port":                               {entries: []Entry{entry("foo", "h", "httpbin.bar.global", nil, true, ep("gw2", "cluster2", 31443))}, wantKind: ProblemGatewayMismatch, wantText: "gw2:31443"},
		"subset with pod labels":                         {entries: []Entry{good}, drs: []DestRule{{Namespace: "foo", Name: "dr", Host: "httpbin.bar.global", Subsets: []Subset{{Name: "v2", Labels: map[string]string{"version": "v2"}}}}}, wantKind: ProblemSubsetLabels, wantText: "version: v2"},
		"subset of a host without entries":               {drs: []DestRule{{Namespace: "foo", Name: "dr", Host: "other.bar.global", Subsets: []Subset{{Name: "v2", Labels: map[string]string{"version": "v2"}}}}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []Problem
			got = append(got, CheckVIPs("cluster1", tc.entries, rules.DefaultVIPSpace())...)
			got = append(got, CheckStale("cluster1", tc.entries, lookup)...)
			got = append(got, CheckGateways("cluster1", tc.entries, gateways)...)
			got = append(got, CheckSubsets("cluster1", tc.entries, tc.drs)...)
			if tc.wantKind == "" {
				if len(got) != 0 {
					t.Fatalf("want no problem, got %+v", got)
				}
				return
			}
			if len(got) != 1 || got[0].Kind != tc.wantKind || !strings.Contains(got[0].Message, tc.wantText) || got[0].Fix == "" || got[0].Cluster != "cluster1" {
				t.Fatalf("want one %s mentioning %q, got %+v", tc.wantKind, tc.wantText, got)
			}
		})
	}
}

func TestEntryFrom(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": "n", "namespace": "ns",
			"labels":      map[string]any{rules.ManagedByLabel: rules.ManagedByValue},
			"annotations": map[string]any{rules.AnnotationSourceClusters: "cluster2, cluster3", rules.AnnotationExportedFrom: "bar/httpbin"}},
		"spec": map[string]any{
			"hosts": []any{"httpbin.bar.global"}, "addresses": []any{"240.0.0.2"},
			"endpoints": []any{map[string]any{"address": "gw", "labels": map[string]any{"cluster": "cluster2"}, "ports": map[string]any{"http1": int64(15443)}}},
		},
	}}
	e := EntryFrom(u)
	if !e.Managed || !e.Global() || e.Source != "bar/httpbin" || strings.Join(e.Sources(), ",") != "cluster2,cluster3" || e.Endpoints[0].Ports["http1"] != 15443 {
		t.Fatalf("EntryFrom = %+v", e)
	}
}
