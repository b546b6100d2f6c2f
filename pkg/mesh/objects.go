package mesh

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// Gateways kubectl mesh creates in the called cluster.
const (
	// CrossNetworkGateway passes mTLS for *.local services through on
	// 15443, under the name Istio's multi-network install gives it.
	CrossNetworkGateway = "cross-network-gateway"
	// EastWestGateway is the name an older --multi-primary gave the same
	// Gateway; records may still list it.
	EastWestGateway = "eastwest-gateway"
	// LocalHosts is the passthrough server's hosts: every service of the
	// cluster, which is what the remote SNI names.
	LocalHosts = rules.LocalHosts
	// GlobalHosts is what older versions of link passed through; no
	// service is called *.global, so pilot builds no listener for it.
	GlobalHosts = "*.global"
)

// DefaultGatewaySelector selects the stock ingress gateway pods.
var DefaultGatewaySelector = map[string]string{"istio": "ingressgateway"}

// PassthroughGateway is an Istio Gateway that hands TLS on 15443 through
// to the service named in the SNI (AUTO_PASSTHROUGH), for hosts.
func PassthroughGateway(name, hosts string, selector map[string]string) *unstructured.Unstructured {
	sel := map[string]any{}
	for k, v := range selector {
		sel[k] = v
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": rules.GatewayGVR.GroupVersion().String(),
		"kind":       "Gateway",
		"metadata": map[string]any{
			"name":      name,
			"namespace": rules.IstioSystemNamespace,
			"labels":    map[string]any{rules.ManagedByLabel: rules.ManagedByValue},
		},
		"spec": map[string]any{
			"selector": sel,
			"servers": []any{map[string]any{
				"port":  map[string]any{"number": int64(rules.GatewayPort), "name": rules.GatewayPortName, "protocol": "TLS"},
				"tls":   map[string]any{"mode": "AUTO_PASSTHROUGH"},
				"hosts": []any{hosts},
			}},
		},
	}}
}

// selects reports whether the server's Gateway applies to a gateway pod
// with labels; pilot applies a Gateway without selector to every gateway.
func (s PassthroughServer) selects(labels map[string]string) bool {
	return rules.SelectorMatches(s.Selector, labels)
}

// passesLocal reports whether the server passes every *.local service of
// its cluster through, as the remote SNI needs: a host pattern covering
// *.local without restricting the namespace.
func (s PassthroughServer) passesLocal() bool {
	return slices.ContainsFunc(s.Hosts, func(h string) bool {
		ns, pattern, scoped := strings.Cut(h, "/")
		if scoped && ns != "*" {
			return false
		}
		if !scoped {
			pattern = h
		}
		return pattern == "*" || pattern == LocalHosts
	})
}

// ServesLocalPassthrough reports whether gw already passes *.local through
// on 15443 for pods with labels, so that link reuses it instead of adding
// a second Gateway.
func ServesLocalPassthrough(gw *unstructured.Unstructured, labels map[string]string) bool {
	return slices.ContainsFunc(PassthroughServersFrom(gw), func(p PassthroughServer) bool {
		return p.selects(labels) && p.passesLocal()
	})
}

// IsGlobalPassthrough reports whether gw is a Gateway that an older link
// wrote to pass *.global through: managed by kubectl-mesh, and every
// server only for *.global. Such a Gateway routes nothing on Istio ≥ 1.14
// and is removed.
func IsGlobalPassthrough(gw *unstructured.Unstructured) bool {
	if gw.GetLabels()[rules.ManagedByLabel] != rules.ManagedByValue {
		return false
	}
	servers, _, _ := unstructured.NestedSlice(gw.Object, "spec", "servers")
	if len(servers) == 0 {
		return false
	}
	for _, s := range servers {
		m, _ := s.(map[string]any)
		hs, _, _ := unstructured.NestedStringSlice(m, "hosts")
		if len(hs) == 0 || slices.ContainsFunc(hs, func(h string) bool { return h != GlobalHosts }) {
			return false
		}
	}
	return true
}
