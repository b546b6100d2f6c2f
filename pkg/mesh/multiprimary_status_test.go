package mesh

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// twoClusters is a clean multi-primary, multi-network mesh: east and west
// each hold a remote secret for the other, and each has an east-west
// gateway for its network with a *.local passthrough server.
func twoClusters(now time.Time) []Cluster {
	exp := now.Add(300 * 24 * time.Hour)
	c := func(name, other, server, otherServer string) Cluster {
		return Cluster{Context: name, ClusterName: name, MeshID: "mesh1", Network: "net-" + name, Server: server, Roots: []string{"ROOT"},
			Remote: []RemoteSecretStatus{{Cluster: name, Secret: "istio-system/istio-remote-secret-" + other, ClusterName: other, Peer: other,
				Server: otherServer, Managed: true, Expires: &exp, Answers: true, ListServices: true, ListEndpointSlices: true}},
			View: RouteView{
				Gateways: []PassthroughServer{{Namespace: "istio-system", Name: CrossNetworkGateway, Selector: map[string]string{"istio": "eastwestgateway"}, Hosts: []string{LocalHosts}}},
				GatewayServices: []GatewayService{{Namespace: "istio-system", Name: "istio-eastwestgateway", Network: "net-" + name,
					Addresses: []string{"192.0.2." + name}, Ports: []uint32{15443}, Selector: map[string]string{"istio": "eastwestgateway"}}},
			}}
	}
	return []Cluster{c("east", "west", "https://10.0.0.1:6443", "https://10.0.0.2:6443"), c("west", "east", "https://10.0.0.2:6443", "https://10.0.0.1:6443")}
}

func TestCheckMultiPrimary(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	past, soon := now.Add(-time.Hour), now.Add(10*24*time.Hour)
	tests := map[string]struct {
		edit        func(cs []Cluster)
		kind        string // "" for a clean mesh
		object      string
		text        string
		warning     string
		alsoProblem []string
	}{
		"clean":              {edit: func([]Cluster) {}},
		"unreachable server": {edit: func(cs []Cluster) { cs[0].Remote[0].Answers, cs[0].Remote[0].Error = false, "connection refused" }, kind: ProblemRemoteUnreachable, object: "istio-remote-secret-west", text: "does not answer: connection refused"},
		"expired token": {edit: func(cs []Cluster) {
			cs[0].Remote[0].Unauthorized, cs[0].Remote[0].Expires = true, &past
		}, kind: ProblemRemoteTokenExpired, object: "istio-remote-secret-west", text: "expired at"},
		"rejected token":  {edit: func(cs []Cluster) { cs[0].Remote[0].Unauthorized = true }, kind: ProblemRemoteTokenInvalid, object: "istio-remote-secret-west", text: "rejects the token"},
		"cannot list":     {edit: func(cs []Cluster) { cs[1].Remote[0].ListEndpointSlices = false }, kind: ProblemRemoteCannotList, object: "istio-remote-secret-east", text: "EndpointSlices (false)"},
		"unreadable":      {edit: func(cs []Cluster) { cs[0].Remote[0].Server, cs[0].Remote[0].Error = "", "not a kubeconfig" }, kind: ProblemRemoteSecretBroken, object: "istio-remote-secret-west", text: "not a kubeconfig"},
		"expires soon":    {edit: func(cs []Cluster) { cs[0].Remote[0].Expires = &soon }, warning: WarningTokenExpiresSoon},
		"loopback server": {edit: func(cs []Cluster) { cs[0].Remote[0].Server = "https://127.0.0.1:6443" }, warning: WarningLoopbackServer},
		"two clusters, one name": {edit: func(cs []Cluster) { cs[1].ClusterName = "east" }, kind: ProblemDuplicateCluster, object: "istiod", text: "clusterName east",
			alsoProblem: []string{ProblemClusterNameMismatch}},
		"secret of its own name": {edit: func(cs []Cluster) { cs[0].Remote[0].ClusterName, cs[0].Remote[0].Peer = "east", "" }, kind: ProblemDuplicateCluster, object: "istio-remote-secret-west", text: "own istiod"},
		"two secrets, one name": {edit: func(cs []Cluster) {
			dup := cs[0].Remote[0]
			dup.Secret = "istio-system/copy"
			cs[0].Remote = append(cs[0].Remote, dup)
		}, kind: ProblemDuplicateCluster, object: "copy", text: "also in secret istio-system/istio-remote-secret-west"},
		"name not the peer's":   {edit: func(cs []Cluster) { cs[1].ClusterName = "west2" }, kind: ProblemClusterNameMismatch, object: "istio-remote-secret-west", text: "clusterName west2"},
		"mesh IDs differ":       {edit: func(cs []Cluster) { cs[1].MeshID = "mesh2" }, kind: ProblemMeshIDMismatch, object: "istio-remote-secret-west", text: "mesh mesh2"},
		"roots differ":          {edit: func(cs []Cluster) { cs[1].Roots = []string{"OTHER"} }, kind: ProblemRootMismatch, object: "istio-remote-secret-west", text: "different roots"},
		"network label missing": {edit: func(cs []Cluster) { cs[1].Network = "" }, kind: ProblemNoNetworkLabel, object: "namespace istio-system", text: "west has no"},
		"no gateway for the network": {edit: func(cs []Cluster) { cs[1].View.GatewayServices[0].Network = "" }, kind: ProblemNoNetworkGateway, object: "namespace istio-system",
			text: "no Service of west labelled topology.istio.io/network=net-west"},
		"gateway without address": {edit: func(cs []Cluster) { cs[1].View.GatewayServices[0].Addresses = nil }, kind: ProblemNoNetworkGateway, object: "namespace istio-system", text: "with an address"},
		"no *.local passthrough": {edit: func(cs []Cluster) { cs[1].View.Gateways[0].Hosts = []string{"*.global"} }, kind: ProblemNetworkNoPassthru, object: "service istio-system/istio-eastwestgateway",
			text: "AUTO_PASSTHROUGH for *.local"},
		"passthrough selects other pods": {edit: func(cs []Cluster) { cs[1].View.Gateways[0].Selector = map[string]string{"istio": "ingressgateway"} }, kind: ProblemNetworkNoPassthru, object: "istio-eastwestgateway", text: "selecting its pods"},
		"one network, two gateways": {edit: func(cs []Cluster) {
			for i := range cs {
				cs[i].Network, cs[i].View.GatewayServices[0].Network = "shared", "shared"
			}
		}, kind: ProblemNetworkConflict, object: "namespace istio-system", text: "both claim network shared"},
		"one network, one gateway address": {edit: func(cs []Cluster) {
			for i := range cs {
				cs[i].Network, cs[i].View.GatewayServices[0].Network, cs[i].View.GatewayServices[0].Addresses = "shared", "shared", []string{"192.0.2.1"}
			}
		}},
		"one network, no gateways needed": {edit: func(cs []Cluster) {
			for i := range cs {
				cs[i].Network, cs[i].View = "shared", RouteView{}
			}
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cs := twoClusters(now)
			tc.edit(cs)
			problems, warnings := CheckMultiPrimary(cs, now)
			found := tc.kind == ""
			for _, p := range problems {
				switch {
				case p.Kind == tc.kind && strings.Contains(p.Object, tc.object) && strings.Contains(p.Message, tc.text) && p.Fix != "":
					found = true
				case p.Kind == tc.kind || slices.Contains(tc.alsoProblem, p.Kind):
				default:
					t.Errorf("unexpected problem %+v", p)
				}
			}
			if !found {
				t.Errorf("no %s on %q mentioning %q in %+v", tc.kind, tc.object, tc.text, problems)
			}
			if tc.warning == "" && len(warnings) > 0 || tc.warning != "" && (len(warnings) != 1 || warnings[0].Kind != tc.warning || warnings[0].Fix == "") {
				t.Errorf("warnings = %+v, want %q", warnings, tc.warning)
			}
		})
	}
}

func TestCheckMultiPrimaryOnlyMeshClusters(t *testing.T) {
	// A cluster without remote secrets that none reaches is not in the
	// multi-primary mesh: its missing network label is nobody's problem.
	now := time.Now()
	cs := append(twoClusters(now), Cluster{Context: "legacy", ClusterName: "east"})
	if problems, _ := CheckMultiPrimary(cs, now); len(problems) != 0 {
		t.Fatalf("problems about a cluster outside the mesh: %+v", problems)
	}
}
