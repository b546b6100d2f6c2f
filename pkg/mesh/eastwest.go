package mesh

import (
	"fmt"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// Istio's east-west gateway, as its multi-network install names it.
const (
	EastWestGatewayName     = "istio-eastwestgateway"
	EastWestGatewaySelector = "eastwestgateway" // the value of label istio
	// HelmGatewayChart is Istio's gateway chart, which installs the
	// east-west gateway with networkGateway set.
	HelmGatewayChart = "istio/gateway"
)

// EastWestGatewayOperator is the IstioOperator that installs Istio's
// east-west gateway for network (istioctl install -f), with the values of
// Istio's samples/multicluster/gen-eastwest-gateway.sh: the gateway labelled
// istio: eastwestgateway and with the network, requesting the network's
// view, and the ports 15021, 15443 (mTLS passthrough), 15012 and 15017.
func EastWestGatewayOperator(network, revision string) *unstructured.Unstructured {
	port := func(name string, n int64) any {
		return map[string]any{"name": name, "port": n, "targetPort": n}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "install.istio.io/v1alpha1",
		"kind":       "IstioOperator",
		"metadata":   map[string]any{"name": "eastwest"},
		"spec": map[string]any{
			"revision": revision,
			"profile":  "empty",
			"components": map[string]any{
				"ingressGateways": []any{map[string]any{
					"name":    EastWestGatewayName,
					"enabled": true,
					"label": map[string]any{
						"istio":      EastWestGatewaySelector,
						"app":        EastWestGatewayName,
						NetworkLabel: network,
					},
					"k8s": map[string]any{
						"env": []any{map[string]any{"name": "ISTIO_META_REQUESTED_NETWORK_VIEW", "value": network}},
						"service": map[string]any{"ports": []any{
							port("status-port", 15021),
							port(rules.GatewayPortName, rules.GatewayPort),
							port("tls-istiod", 15012),
							port("tls-webhook", 15017),
						}},
					},
				}},
			},
			"values": map[string]any{
				"gateways": map[string]any{"istio-ingressgateway": map[string]any{"injectionTemplate": "gateway"}},
				"global":   map[string]any{"network": network},
			},
		},
	}}
}

// EastWestGatewayHelmValues are the values of Istio's gateway chart for the
// same gateway: its name gives the istio: eastwestgateway selector, and
// networkGateway labels it with the network, sets the network view and
// opens the network gateway ports.
func EastWestGatewayHelmValues(network string) map[string]any {
	return map[string]any{"name": EastWestGatewayName, "networkGateway": network}
}

// EastWestGatewayHelmCommand is the helm command installing it.
func EastWestGatewayHelmCommand(network string) string {
	values := EastWestGatewayHelmValues(network)
	cmd := fmt.Sprintf("helm install %s %s -n %s", EastWestGatewayName, HelmGatewayChart, rules.IstioSystemNamespace)
	for _, k := range slices.Sorted(maps.Keys(values)) {
		cmd += fmt.Sprintf(" --set %s=%v", k, values[k])
	}
	return cmd
}
