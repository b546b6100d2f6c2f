package conformance

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	corev1 "k8s.io/api/core/v1"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking/util"
	labelutil "istio.io/istio/pilot/pkg/serviceregistry/util/label"
	"istio.io/istio/pilot/pkg/xds/endpoints"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/cluster"
)

// pilot is Istio's config generation for one lab cluster, fed the objects
// read back from it (with what a kubelet and injector would add).
type pilot struct {
	*clusterObjects
	s *xds.FakeDiscoveryServer
}

// newPilot builds the cluster's pilot; it lives as long as t.
func newPilot(t *testing.T, c *clusterObjects) *pilot {
	t.Helper()
	configs, err := c.istioYAML()
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	s := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		DefaultClusterName: cluster.ID(c.name),
		KubernetesObjects:  c.kubeObjects(),
		ConfigString:       configs,
	})
	return &pilot{clusterObjects: c, s: s}
}

// newPilots builds one pilot per lab cluster.
func newPilots(t *testing.T, sc *scenario) map[string]*pilot {
	t.Helper()
	out := map[string]*pilot{}
	for _, name := range labClusters {
		out[name] = newPilot(t, sc.clusters[name])
	}
	return out
}

// proxyOf is the proxy of pod as pilot sees it when the pod's istio-proxy
// connects: a sidecar, or a gateway (Router).
func (p *pilot) proxyOf(pod *corev1.Pod, typ model.NodeType) *model.Proxy {
	return p.proxyIn(pod, typ, "")
}

// proxyIn is proxyOf placed in a locality (REGION[/ZONE[/SUBZONE]]; ""
// none: the empty locality of a proxy whose node has no topology labels,
// which is what proxyOf gives every proxy). A connecting proxy's locality
// is what pilot's ADS server derives from the topology labels the registry
// gives the pod (its Node's) or else from the xDS node
// (pilot/pkg/xds/ads.go setTopologyLabels); the fake's SetupProxy does
// neither, so, as Istio's own locality tests do, the locality is set on
// the proxy, its xDS node, and as topology labels on the proxy and its
// node metadata (labelutil.AugmentLabels, what setTopologyLabels adds).
func (p *pilot) proxyIn(pod *corev1.Pod, typ model.NodeType, locality string) *model.Proxy {
	proxy := &model.Proxy{
		Type:            typ,
		ID:              pod.Name + "." + pod.Namespace,
		ConfigNamespace: pod.Namespace,
		IPAddresses:     []string{pod.Status.PodIP},
		Labels:          pod.Labels,
		Metadata: &model.NodeMetadata{
			Namespace: pod.Namespace,
			ClusterID: cluster.ID(p.name),
			Labels:    pod.Labels,
		},
	}
	// Never nil, as in ADS: without one, pilot's locality failover
	// dereferences it (and panics).
	proxy.Locality = util.ConvertLocality(locality)
	if locality != "" {
		proxy.XdsNode = &corev3.Node{Id: proxy.ID, Locality: proxy.Locality}
		proxy.Labels = labelutil.AugmentLabels(pod.Labels, cluster.ID(p.name), locality, pod.Spec.NodeName, "")
		proxy.Metadata.Labels = proxy.Labels
	}
	return p.s.SetupProxy(proxy)
}

// joinYAML joins YAML documents with the "\n---\n" separator that
// FakeOptions.ConfigString splits on.
func joinYAML(docs ...string) string {
	return strings.Join(docs, "\n---\n")
}

// listenerByPort returns the listener bound to port (any address), or nil.
func listenerByPort(ls []*listenerv3.Listener, port uint32) *listenerv3.Listener {
	for _, l := range ls {
		if l.GetAddress().GetSocketAddress().GetPortValue() == port {
			return l
		}
	}
	return nil
}

func listenerNames(ls []*listenerv3.Listener) []string {
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.GetName())
	}
	return out
}

// filterChainBySNI returns the first filter chain whose match includes sni.
func filterChainBySNI(l *listenerv3.Listener, sni string) *listenerv3.FilterChain {
	for _, fc := range l.GetFilterChains() {
		if slices.Contains(fc.GetFilterChainMatch().GetServerNames(), sni) {
			return fc
		}
	}
	return nil
}

// serverNamesOf lists every SNI matched by the listener's filter chains.
func serverNamesOf(l *listenerv3.Listener) []string {
	var out []string
	for _, fc := range l.GetFilterChains() {
		out = append(out, fc.GetFilterChainMatch().GetServerNames()...)
	}
	sort.Strings(out)
	return out
}

// tcpProxyCluster decodes the chain's envoy.filters.network.tcp_proxy filter
// and returns its (single) upstream cluster, or "".
func tcpProxyCluster(fc *listenerv3.FilterChain) (string, error) {
	for _, f := range fc.GetFilters() {
		if f.GetName() != "envoy.filters.network.tcp_proxy" {
			continue
		}
		tp := &tcpproxyv3.TcpProxy{}
		if err := f.GetTypedConfig().UnmarshalTo(tp); err != nil {
			return "", fmt.Errorf("decode tcp_proxy: %w", err)
		}
		if c := tp.GetCluster(); c != "" {
			return c, nil
		}
		if wc := tp.GetWeightedClusters().GetClusters(); len(wc) == 1 {
			return wc[0].GetName(), nil
		}
	}
	return "", nil
}

func clusterByName(cs []*clusterv3.Cluster, name string) *clusterv3.Cluster {
	for _, c := range cs {
		if c.GetName() == name {
			return c
		}
	}
	return nil
}

// errNoTLS is clusterUpstreamTLS's answer for a cluster that sends plain
// text.
var errNoTLS = errors.New("no UpstreamTlsContext")

// clusterUpstreamTLS returns the cluster's UpstreamTlsContext: from the
// cluster's transport_socket (explicit DestinationRule TLS), else from the
// "tlsMode-istio" transport socket match (auto mTLS). how says which.
func clusterUpstreamTLS(c *clusterv3.Cluster) (_ *tlsv3.UpstreamTlsContext, how string, _ error) {
	decode := func(ts *corev3.TransportSocket) (*tlsv3.UpstreamTlsContext, error) {
		if ts == nil || ts.GetName() != "envoy.transport_sockets.tls" {
			return nil, nil
		}
		u := &tlsv3.UpstreamTlsContext{}
		if err := ts.GetTypedConfig().UnmarshalTo(u); err != nil {
			return nil, fmt.Errorf("decode UpstreamTlsContext of %q: %w", c.GetName(), err)
		}
		return u, nil
	}
	if u, err := decode(c.GetTransportSocket()); u != nil || err != nil {
		return u, "transport_socket", err
	}
	for _, m := range c.GetTransportSocketMatches() {
		if u, err := decode(m.GetTransportSocket()); u != nil || err != nil {
			return u, "transport_socket_matches[" + m.GetName() + "]", err
		}
	}
	return nil, "", errNoTLS
}

// clusterEndpoints returns "ip:port" of the cluster's endpoints, sorted: the
// inline load_assignment for STRICT_DNS/LOGICAL_DNS/STATIC clusters (DNS
// ServiceEntries), or pilot's EDS answer for EDS clusters.
func clusterEndpoints(s *xds.FakeDiscoveryServer, p *model.Proxy, c *clusterv3.Cluster) []string {
	if c == nil {
		return nil
	}
	cla := c.GetLoadAssignment()
	if c.GetType() == clusterv3.Cluster_EDS {
		b := endpoints.NewEndpointBuilder(c.GetName(), p, s.PushContext())
		cla = b.BuildClusterLoadAssignment(s.Discovery.Env.EndpointIndex)
	}
	return claAddresses(cla)
}

func claAddresses(cla *endpointv3.ClusterLoadAssignment) []string {
	var out []string
	for _, lle := range cla.GetEndpoints() {
		for _, lb := range lle.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			out = append(out, net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue()))))
		}
	}
	sort.Strings(out)
	return out
}

// endpointTLSModes returns, per inline endpoint, the istio tlsMode in its
// envoy.transport_socket_match metadata ("" when absent): what auto mTLS
// decides on.
func endpointTLSModes(c *clusterv3.Cluster) []string {
	var out []string
	for _, lle := range c.GetLoadAssignment().GetEndpoints() {
		for _, lb := range lle.GetLbEndpoints() {
			md := lb.GetMetadata().GetFilterMetadata()["envoy.transport_socket_match"]
			out = append(out, md.GetFields()["tlsMode"].GetStringValue())
		}
	}
	return out
}
