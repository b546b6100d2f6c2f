package mesh

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// RemoteSecretStatus is one cluster of a remote secret (a Secret labelled
// istio/multiCluster: "true", whoever wrote it), with what its token may
// do, as the server it names answered.
type RemoteSecretStatus struct {
	// Cluster is the context of the cluster holding the secret; Secret is
	// its namespace/name; ClusterName the data key istiod takes as the
	// remote cluster's name.
	Cluster     string `json:"cluster"`
	Secret      string `json:"secret"`
	ClusterName string `json:"clusterName"`
	// Peer is the context of the cluster the kubeconfig reaches, when it
	// is one of the reported clusters.
	Peer    string `json:"peer,omitempty"`
	Server  string `json:"server"`
	Managed bool   `json:"managed"`
	// Reader is the ServiceAccount the token claims; Expires when it
	// expires (nil: never, as a legacy token Secret's token).
	Reader  string     `json:"reader,omitempty"`
	Expires *time.Time `json:"tokenExpires,omitempty"`
	// Answers: the server answered the token's access reviews (with or
	// without accepting the token). Unauthorized: it rejected the token.
	Answers      bool   `json:"answers"`
	Unauthorized bool   `json:"unauthorized,omitempty"`
	Error        string `json:"error,omitempty"`
	// What the token may do, as the server says.
	ListServices       bool `json:"listServices"`
	ListEndpointSlices bool `json:"listEndpointSlices"`
	ReadSecrets        bool `json:"readSecrets"`
}

// Ref names the secret as problems do.
func (r RemoteSecretStatus) Ref() string { return "secret " + r.Secret }

// Cluster is what the multi-primary checks need of a reported cluster.
type Cluster struct {
	Context string
	// ClusterName is istiod's clusterName ("" when no istiod was found);
	// MeshID the mesh config's; Network the istio-system label.
	ClusterName, MeshID, Network string
	// Server is the API server URL status reached it at.
	Server string
	Roots  []string
	Remote []RemoteSecretStatus
	// View holds its Gateways and gateway Services.
	View RouteView
}

// Kinds of multi-primary problems and warnings.
const (
	ProblemRemoteUnreachable   = "RemoteServerUnreachable"
	ProblemRemoteTokenExpired  = "RemoteTokenExpired"
	ProblemRemoteTokenInvalid  = "RemoteTokenInvalid"
	ProblemRemoteCannotList    = "RemoteReaderCannotList"
	ProblemRemoteSecretBroken  = "RemoteSecretUnreadable"
	ProblemDuplicateCluster    = "DuplicateClusterName"
	ProblemClusterNameMismatch = "RemoteClusterNameMismatch"
	ProblemMeshIDMismatch      = "MeshIDMismatch"
	ProblemRootMismatch        = "RemoteRootMismatch"
	ProblemNoNetworkLabel      = "MissingNetworkLabel"
	ProblemNetworkConflict     = "NetworkClaimedWithOtherGateway"
	ProblemNoNetworkGateway    = "NoNetworkGateway"
	ProblemNetworkNoPassthru   = "NetworkGatewayWithoutPassthrough"
	WarningTokenExpiresSoon    = "RemoteTokenExpiresSoon"
	WarningLoopbackServer      = "RemoteServerLoopback"
)

// TokenWarnBefore is how close to its expiry a remote secret's token is warned about.
const TokenWarnBefore = 30 * 24 * time.Hour

// relink is the command that rewrites a remote secret of cluster for peer.
func relink(cluster, peer, clusterName string) string {
	if peer == "" {
		peer = "<the context of cluster " + clusterName + ">"
	}
	return fmt.Sprintf("kubectl mesh link --from %s --to %s --multi-primary", cluster, peer)
}

// CheckMultiPrimary checks the remote secrets of every cluster and the
// multi-primary mesh they make: each token is accepted by its server and
// may list Services and EndpointSlices, cluster names are unique and are
// the peers' own, mesh IDs and roots agree, and every peer on another
// network has a gateway for that network with a *.local passthrough server.
func CheckMultiPrimary(clusters []Cluster, now time.Time) (problems, warnings []Problem) {
	byContext := map[string]*Cluster{}
	for i := range clusters {
		byContext[clusters[i].Context] = &clusters[i]
	}
	inMesh := map[string]bool{}
	for _, c := range clusters {
		seen := map[string]string{}
		for _, rs := range c.Remote {
			inMesh[c.Context] = true
			if rs.Peer != "" {
				inMesh[rs.Peer] = true
			}
			p, w := checkRemoteSecret(c, rs, byContext, now)
			problems, warnings = append(problems, p...), append(warnings, w...)
			if other, dup := seen[rs.ClusterName]; dup {
				problems = append(problems, Problem{Cluster: c.Context, Kind: ProblemDuplicateCluster, Object: rs.Ref(),
					Message: fmt.Sprintf("cluster name %s is also in secret %s; istiod reads only one of them", rs.ClusterName, other),
					Fix:     "delete the remote secret that does not reach " + rs.ClusterName})
			}
			seen[rs.ClusterName] = rs.Secret
		}
	}
	names := map[string][]string{}
	for _, c := range clusters {
		if inMesh[c.Context] && c.ClusterName != "" {
			names[c.ClusterName] = append(names[c.ClusterName], c.Context)
		}
	}
	for name, ctxs := range names {
		if len(ctxs) < 2 {
			continue
		}
		slices.Sort(ctxs)
		for _, ctx := range ctxs {
			problems = append(problems, Problem{Cluster: ctx, Kind: ProblemDuplicateCluster, Object: "deployment istio-system/istiod",
				Message: fmt.Sprintf("clusters %s all run istiod with clusterName %s; istiod takes a remote cluster of its own name for itself", strings.Join(ctxs, ", "), name),
				Fix:     "give each cluster its own values.global.multiCluster.clusterName and reinstall istiod; then run kubectl mesh link --multi-primary again"})
		}
	}
	problems = append(problems, checkNetworks(clusters, inMesh)...)
	return problems, warnings
}

func checkRemoteSecret(c Cluster, rs RemoteSecretStatus, byContext map[string]*Cluster, now time.Time) (problems, warnings []Problem) {
	add := func(kind, msg, fix string) {
		problems = append(problems, Problem{Cluster: c.Context, Kind: kind, Object: rs.Ref(), Message: msg, Fix: fix})
	}
	fix := relink(c.Context, rs.Peer, rs.ClusterName)
	if LoopbackServer(rs.Server) {
		warnings = append(warnings, Problem{Cluster: c.Context, Kind: WarningLoopbackServer, Object: rs.Ref(),
			Message: fmt.Sprintf("cluster %s's server %s is a loopback address; istiod in %s reaches it only if it runs on that host", rs.ClusterName, rs.Server, c.Context),
			Fix:     fix + " --server " + orPlaceholder(rs.Peer, rs.ClusterName) + "=https://<an address istiod reaches>"})
	}
	switch {
	case rs.Server == "":
		add(ProblemRemoteSecretBroken, fmt.Sprintf("the kubeconfig of cluster %s is unreadable: %s", rs.ClusterName, rs.Error), fix)
		return problems, warnings
	case !rs.Answers:
		add(ProblemRemoteUnreachable, fmt.Sprintf("cluster %s's server %s does not answer: %s", rs.ClusterName, rs.Server, rs.Error),
			"check that the address is the peer's API server, reachable from istiod; otherwise "+fix+" --server "+orPlaceholder(rs.Peer, rs.ClusterName)+"=https://<its address>")
		return problems, warnings
	case rs.Unauthorized && rs.Expires != nil && !rs.Expires.After(now):
		add(ProblemRemoteTokenExpired, fmt.Sprintf("the token for cluster %s expired at %s; its server rejects it", rs.ClusterName, rs.Expires.Format(time.RFC3339)), fix+" (it writes a new token)")
		return problems, warnings
	case rs.Unauthorized:
		add(ProblemRemoteTokenInvalid, fmt.Sprintf("cluster %s's server %s rejects the token (revoked, of a deleted account, or not issued there)", rs.ClusterName, rs.Server), fix+" (it writes a new token)")
		return problems, warnings
	case rs.Error != "":
		add(ProblemRemoteCannotList, fmt.Sprintf("cluster %s's server %s answers the token with an error: %s", rs.ClusterName, rs.Server, rs.Error), fix)
		return problems, warnings
	case !rs.ListServices || !rs.ListEndpointSlices:
		add(ProblemRemoteCannotList, fmt.Sprintf("the token of %s may not list Services (%v) and EndpointSlices (%v) of cluster %s in all namespaces, which istiod needs", orPlaceholder(rs.Reader, "its account"), rs.ListServices, rs.ListEndpointSlices, rs.ClusterName),
			fmt.Sprintf("bind the account to Istio's reader ClusterRole (%s), or %s", IstioReaderRoleName, fix))
	}
	if rs.Expires != nil && rs.Expires.Sub(now) < TokenWarnBefore {
		warnings = append(warnings, Problem{Cluster: c.Context, Kind: WarningTokenExpiresSoon, Object: rs.Ref(),
			Message: fmt.Sprintf("the token for cluster %s expires at %s", rs.ClusterName, rs.Expires.Format(time.RFC3339)), Fix: fix + " (it renews the token)"})
	}
	if rs.ClusterName == c.ClusterName {
		add(ProblemDuplicateCluster, fmt.Sprintf("the remote secret names cluster %s, the clusterName of %s's own istiod, which ignores it", rs.ClusterName, c.Context),
			"give each cluster its own values.global.multiCluster.clusterName, or delete the remote secret if it reaches this cluster")
	}
	peer := byContext[rs.Peer]
	if peer == nil {
		return problems, warnings
	}
	if peer.ClusterName != "" && peer.ClusterName != rs.ClusterName {
		add(ProblemClusterNameMismatch, fmt.Sprintf("the remote secret names cluster %s, but %s's istiod runs with clusterName %s", rs.ClusterName, peer.Context, peer.ClusterName), fix)
	}
	if c.MeshID != "" && peer.MeshID != "" && c.MeshID != peer.MeshID {
		add(ProblemMeshIDMismatch, fmt.Sprintf("%s is in mesh %s, its peer %s in mesh %s", c.Context, c.MeshID, peer.Context, peer.MeshID),
			"install both with the same values.global.meshID (defaultConfig.meshId of the mesh config)")
	}
	if len(c.Roots) > 0 && len(peer.Roots) > 0 && !slices.ContainsFunc(c.Roots, func(r string) bool { return slices.Contains(peer.Roots, r) }) {
		add(ProblemRootMismatch, fmt.Sprintf("%s and its peer %s trust different roots (%s, %s): mTLS between them fails", c.Context, peer.Context, c.Roots[0], peer.Roots[0]),
			"install certificates from one root in both with kubectl mesh certs install")
	}
	if c.Network != peer.Network && peer.Network != "" {
		problems = append(problems, checkNetworkGateway(c, *peer, rs)...)
	}
	return problems, warnings
}

func orPlaceholder(s, cluster string) string {
	if s == "" {
		return "<the context of cluster " + cluster + ">"
	}
	return s
}

// checkNetworkGateway: traffic from c to a peer on another network goes
// through a gateway of the peer's network, which must have an address and
// pass *.local through on 15443.
func checkNetworkGateway(c, peer Cluster, rs RemoteSecretStatus) []Problem {
	var gws []GatewayService
	for _, g := range peer.View.GatewayServices {
		if g.Network == peer.Network && (len(g.Addresses) > 0 || len(g.NodePorts) > 0 && len(g.NodeAddresses) > 0) {
			gws = append(gws, g)
		}
	}
	if len(gws) == 0 {
		return []Problem{{Cluster: peer.Context, Kind: ProblemNoNetworkGateway, Object: "namespace istio-system",
			Message: fmt.Sprintf("%s is on network %s and %s on %s, but no Service of %s labelled %s=%s leads to a gateway's %d with an address, so %s cannot reach its pods", peer.Context, peer.Network, c.Context, orPlaceholder(c.Network, c.Context+" (no label)"), peer.Context, NetworkLabel, peer.Network, 15443, c.Context),
			Fix:     fmt.Sprintf("install Istio's east-west gateway in %s (kubectl mesh link --from %s --to %s --multi-primary says how) and label its Service: kubectl mesh link --from %s --to %s --multi-primary --network %s=%s", peer.Context, c.Context, peer.Context, c.Context, peer.Context, peer.Context, peer.Network)}}
	}
	for _, g := range gws {
		for _, pod := range g.pods() {
			if slices.ContainsFunc(peer.View.Gateways, func(s PassthroughServer) bool { return s.selects(pod) && s.passesLocal() }) {
				return nil
			}
		}
	}
	return []Problem{{Cluster: peer.Context, Kind: ProblemNetworkNoPassthru, Object: "service " + gws[0].Ref(),
		Message: fmt.Sprintf("the gateway of network %s has no Gateway server on 15443 with TLS AUTO_PASSTHROUGH for %s selecting its pods, so requests from %s (network %s) to %s's services land nowhere", peer.Network, LocalHosts, c.Context, orPlaceholder(c.Network, "none"), peer.Context),
		Fix:     fmt.Sprintf("kubectl mesh link --from %s --to %s --multi-primary (it writes Gateway istio-system/%s)", c.Context, peer.Context, CrossNetworkGateway)}}
}

// checkNetworks: in a mesh where some cluster has a network, one without
// is on the unnamed network no gateway serves; two clusters claiming one
// network reach each other's pods directly, which their different
// gateways suggest they cannot.
func checkNetworks(clusters []Cluster, inMesh map[string]bool) []Problem {
	var out []Problem
	labelled := false
	for _, c := range clusters {
		labelled = labelled || inMesh[c.Context] && c.Network != ""
	}
	byNetwork := map[string][]Cluster{}
	for _, c := range clusters {
		if !inMesh[c.Context] {
			continue
		}
		if c.Network == "" {
			if labelled {
				out = append(out, Problem{Cluster: c.Context, Kind: ProblemNoNetworkLabel, Object: "namespace istio-system",
					Message: fmt.Sprintf("%s has no %s label in a multi-network mesh, so istiod cannot tell which of its endpoints other clusters reach directly", c.Context, NetworkLabel),
					Fix:     fmt.Sprintf("kubectl --context %s label namespace istio-system %s=<its network>, or link to it with --network %s=<its network>", c.Context, NetworkLabel, c.Context)})
			}
			continue
		}
		byNetwork[c.Network] = append(byNetwork[c.Network], c)
	}
	for network, cs := range byNetwork {
		for i := 0; i < len(cs); i++ {
			for j := i + 1; j < len(cs); j++ {
				a, b := networkAddresses(cs[i], network), networkAddresses(cs[j], network)
				if len(a) == 0 || len(b) == 0 || slices.ContainsFunc(a, func(x string) bool { return slices.Contains(b, x) }) {
					continue
				}
				out = append(out, Problem{Cluster: cs[j].Context, Kind: ProblemNetworkConflict, Object: "namespace istio-system",
					Message: fmt.Sprintf("%s and %s both claim network %s but have different gateways (%s; %s): clusters on one network must reach each other's pods directly", cs[i].Context, cs[j].Context, network, strings.Join(a, ","), strings.Join(b, ",")),
					Fix:     fmt.Sprintf("if their pods cannot reach each other, give %s its own network: kubectl mesh link --from %s --to %s --multi-primary --network %s=<its network>", cs[j].Context, cs[i].Context, cs[j].Context, cs[j].Context)})
			}
		}
	}
	return out
}

func networkAddresses(c Cluster, network string) []string {
	var out []string
	for _, g := range c.View.GatewayServices {
		if g.Network == network {
			out = append(out, g.Addresses...)
		}
	}
	return out
}
