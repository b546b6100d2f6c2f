package mesh

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/meshconfig"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// ClusterStatus is one cluster's row of `kubectl mesh status`.
type ClusterStatus struct {
	Context             string     `json:"context"`
	RootFingerprints    []string   `json:"rootFingerprints,omitempty"`
	RootsMatch          bool       `json:"rootsMatch"`
	CertsError          string     `json:"certsError,omitempty"`
	IntermediateExpires *time.Time `json:"intermediateExpires,omitempty"`
	IstioCoreDNS        string     `json:"istioCoreDNS,omitempty"`
	DNSConfigMap        string     `json:"dnsConfigMap,omitempty"`
	GlobalForwarding    []string   `json:"globalForwarding,omitempty"`
	GlobalDNS           bool       `json:"globalDNS"`
	// DNSProxy says whether Istio's DNS proxying is on in the mesh config
	// (Istio ≥ 1.8, no istiocoredns): then the sidecars answer .global
	// names and GlobalDNS is true.
	DNSProxy     bool     `json:"dnsProxy,omitempty"`
	DNSError     string   `json:"dnsError,omitempty"`
	Gateway      string   `json:"gateway,omitempty"`
	GatewayError string   `json:"gatewayError,omitempty"`
	Webhook      string   `json:"webhook"`
	Exported     []string `json:"exported"`
	// ClusterName is istiod's clusterName, MeshID the mesh config's,
	// Network the istio-system network label; RemoteSecrets every remote
	// secret's clusters with what their tokens may do.
	ClusterName        string               `json:"clusterName,omitempty"`
	MeshID             string               `json:"meshID,omitempty"`
	Network            string               `json:"network,omitempty"`
	RemoteSecrets      []RemoteSecretStatus `json:"remoteSecrets,omitempty"`
	RemoteSecretsError string               `json:"remoteSecretsError,omitempty"`
}

// LinkStatus is one linked pair's row.
type LinkStatus struct {
	From        string `json:"from"`
	To          string `json:"to"`
	Gateway     string `json:"gateway"`
	GatewayNow  string `json:"gatewayNow,omitempty"`
	Reachable   bool   `json:"reachable"`
	Error       string `json:"error,omitempty"`
	RootsMatch  *bool  `json:"rootsMatch,omitempty"`
	MultiPrimar bool   `json:"multiPrimary,omitempty"`
}

// Report is the whole status.
type Report struct {
	Clusters []*ClusterStatus `json:"clusters"`
	Links    []LinkStatus     `json:"links"`
	Problems []Problem        `json:"problems"`
	// Warnings need attention but do not fail status: remote secret
	// tokens expiring within 30 days, loopback servers.
	Warnings []Problem `json:"warnings,omitempty"`
	Routes   []Route   `json:"routes"`
}

// ClusterFacts are what status fetched of one cluster, before any check:
// its row as read (the checks fill in RootsMatch and the remote secrets'
// peers) and the objects the checks need.
type ClusterFacts struct {
	Status ClusterStatus
	// Server is the API server URL status reached the cluster at.
	Server string
	// Gateway is the discovered gateway address, nil when discovery
	// failed.
	Gateway   *GatewayAddress
	Entries   []Entry
	DestRules []DestRule
	Traffic   []TrafficRule
	Dests     []RouteDestination
	Records   []Record
	// Routes holds the entries, rules, Gateways and Services the route
	// checks follow; its Services also say which Services exist.
	Routes RouteView
}

// BuildReport runs every check on what was fetched. peers holds, for each
// linked peer that is not among clusters, the error asking it gave (nil:
// it answered).
func BuildReport(clusters []*ClusterFacts, peers map[string]error, now time.Time) *Report {
	rep := &Report{}
	byName := map[string]*ClusterFacts{}
	for _, f := range clusters {
		byName[f.Status.Context] = f
		st := f.Status
		st.RemoteSecrets = slices.Clone(st.RemoteSecrets)
		rep.Clusters = append(rep.Clusters, &st)
	}
	markRootsMatch(rep.Clusters)
	gateways := map[string]GatewayAddress{}
	for _, f := range clusters {
		if f.Gateway != nil {
			gateways[f.Status.Context] = *f.Gateway
		}
	}
	lookup := func(cluster, ns, name string) (exists, known bool) {
		f, ok := byName[cluster]
		if !ok {
			return false, false
		}
		_, exists = f.Routes.Services[ns+"/"+name]
		return exists, true
	}
	space := rules.DefaultVIPSpace()
	for _, f := range clusters {
		c := f.Status.Context
		rep.Problems = append(rep.Problems, CheckVIPs(c, f.Entries, space)...)
		rep.Problems = append(rep.Problems, CheckStale(c, f.Entries, lookup)...)
		rep.Problems = append(rep.Problems, CheckGateways(c, f.Entries, gateways)...)
		rep.Problems = append(rep.Problems, CheckSubsets(c, f.Entries, f.DestRules)...)
		rep.Problems = append(rep.Problems, CheckRouteSubsets(c, f.Dests, f.DestRules, f.Entries)...)
		rep.Problems = append(rep.Problems, CheckLocality(c, f.Traffic, f.Entries)...)
		checkLinks(rep, f, byName, peers)
	}
	checkRoutes(rep, clusters)
	checkMultiPrimary(rep, clusters, now)
	for _, f := range clusters {
		if p, ok := checkGlobalDNS(f); ok {
			rep.Problems = append(rep.Problems, p)
		}
	}
	return rep
}

// markRootsMatch says of each cluster whether it shares a root with every
// cluster that has roots.
func markRootsMatch(clusters []*ClusterStatus) {
	for _, cs := range clusters {
		cs.RootsMatch = len(cs.RootFingerprints) > 0
		for _, other := range clusters {
			if len(other.RootFingerprints) > 0 {
				cs.RootsMatch = cs.RootsMatch && shareRoot(cs.RootFingerprints, other.RootFingerprints)
			}
		}
	}
}

func shareRoot(a, b []string) bool {
	return slices.ContainsFunc(a, func(fp string) bool { return slices.Contains(b, fp) })
}

// checkLinks adds a row for each link record of f, and the problems of
// links that did not finish or whose peer does not answer.
func checkLinks(rep *Report, f *ClusterFacts, byName map[string]*ClusterFacts, peers map[string]error) {
	from := f.Status.Context
	for _, r := range f.Records {
		ls := linkStatus(f, r, byName, peers)
		rep.Links = append(rep.Links, ls)
		object := "configmap " + rules.MeshNamespace + "/" + RecordName(r.Peer)
		if r.Pending {
			rep.Problems = append(rep.Problems, Problem{Cluster: from, Kind: ProblemLinkIncomplete, Object: object,
				Message: fmt.Sprintf("the link to %s did not finish (it failed or was interrupted); the record holds what it may have changed", r.Peer),
				Fix:     fmt.Sprintf("run kubectl mesh link --from %s --to %s again to finish it, or kubectl mesh unlink --from %s --to %s to undo it", from, r.Peer, from, r.Peer)})
		}
		if !ls.Reachable {
			rep.Problems = append(rep.Problems, Problem{Cluster: from, Kind: ProblemPeerUnreachable, Object: object,
				Message: fmt.Sprintf("linked peer %s is unreachable: %s", r.Peer, ls.Error),
				Fix:     fmt.Sprintf("check the peer's API server and the kubeconfig context %q, or run kubectl mesh unlink --from %s --to %s", r.Peer, from, r.Peer)})
		}
	}
}

// linkStatus is a link's row: a reported peer answered, with its gateway
// and roots; another one answered when asking it gave no error.
func linkStatus(f *ClusterFacts, r Record, byName map[string]*ClusterFacts, peers map[string]error) LinkStatus {
	ls := LinkStatus{From: f.Status.Context, To: r.Peer, Gateway: r.Gateway, MultiPrimar: r.MultiPrimary != nil}
	if peer, ok := byName[r.Peer]; ok {
		ls.Reachable = true
		ls.GatewayNow = peer.Status.Gateway
		m := shareRoot(f.Status.RootFingerprints, peer.Status.RootFingerprints)
		ls.RootsMatch = &m
		return ls
	}
	err, asked := peers[r.Peer]
	switch {
	case !asked:
		ls.Error = fmt.Sprintf("context %q was not asked", r.Peer)
	case err != nil:
		ls.Error = err.Error()
	default:
		ls.Reachable = true
	}
	return ls
}

// checkRoutes follows every cluster's .global routes into every reported
// cluster.
func checkRoutes(rep *Report, clusters []*ClusterFacts) {
	views := map[string]RouteView{}
	for _, f := range clusters {
		v := f.Routes
		v.Gateway = f.Gateway
		views[f.Status.Context] = v
	}
	for _, f := range clusters {
		routes, problems := CheckRoutes(views[f.Status.Context], views)
		rep.Routes = append(rep.Routes, routes...)
		rep.Problems = append(rep.Problems, problems...)
	}
}

// checkMultiPrimary matches each remote secret to the reported cluster it
// reaches (by server, else by cluster name) and runs the checks.
func checkMultiPrimary(rep *Report, clusters []*ClusterFacts, now time.Time) {
	byServer, byName := map[string]string{}, map[string][]string{}
	for _, f := range clusters {
		if f.Server != "" {
			byServer[serverKey(f.Server)] = f.Status.Context
		}
		if n := f.Status.ClusterName; n != "" {
			byName[n] = append(byName[n], f.Status.Context)
		}
	}
	var mp []Cluster
	for i, f := range clusters {
		cs := rep.Clusters[i]
		for j := range cs.RemoteSecrets {
			rs := &cs.RemoteSecrets[j]
			if peer, ok := byServer[serverKey(rs.Server)]; ok && rs.Server != "" {
				rs.Peer = peer
			} else if ps := byName[rs.ClusterName]; len(ps) == 1 {
				rs.Peer = ps[0]
			}
		}
		mp = append(mp, Cluster{Context: cs.Context, ClusterName: cs.ClusterName, MeshID: cs.MeshID, Network: cs.Network,
			Server: f.Server, Roots: cs.RootFingerprints, Remote: cs.RemoteSecrets, View: f.Routes})
	}
	problems, warnings := CheckMultiPrimary(mp, now)
	rep.Problems = append(rep.Problems, problems...)
	rep.Warnings = append(rep.Warnings, warnings...)
}

func serverKey(s string) string { return strings.TrimSuffix(strings.ToLower(s), "/") }

// checkGlobalDNS reports a cluster whose .global entries no DNS answers:
// apps then fail to resolve <name>.<ns>.global before any routing.
func checkGlobalDNS(f *ClusterFacts) (Problem, bool) {
	cs := &f.Status
	if cs.GlobalDNS || cs.DNSError != "" {
		return Problem{}, false
	}
	for _, e := range f.Entries {
		if !e.Global() {
			continue
		}
		p := Problem{Cluster: cs.Context, Kind: ProblemNoGlobalDNS, Object: "serviceentry " + e.Ref()}
		if cs.IstioCoreDNS != "" {
			p.Message = fmt.Sprintf("%s does not forward the global zone to istiocoredns %s, so %s does not resolve", cs.DNSConfigMap, cs.IstioCoreDNS, e.Hosts[0])
			p.Fix = fmt.Sprintf("kubectl mesh link --from %s --to <a linked cluster>", cs.Context)
		} else {
			p.Message = fmt.Sprintf("no istiocoredns and Istio's DNS proxying is off, so %s does not resolve", e.Hosts[0])
			p.Fix = DNSCaptureHint(meshconfig.Namespace + "/" + meshconfig.ConfigMapName)
		}
		return p, true
	}
	return Problem{}, false
}

// DNSCaptureHint says how to turn Istio's DNS proxying on by hand in the
// mesh config ConfigMap cm (namespace/name).
func DNSCaptureHint(cm string) string {
	return fmt.Sprintf(`set %s: "true" in ConfigMap %s key %s (or per pod: annotation proxy.istio.io/config: '{"proxyMetadata":{"%s":"true"}}'), or run link with --enable-dns-capture; proxies pick it up when they restart`,
		meshconfig.DNSCapturePath, cm, meshconfig.Key, meshconfig.DNSCaptureKey)
}
