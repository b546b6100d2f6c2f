package rules

import "k8s.io/apimachinery/pkg/runtime/schema"

// The Istio API version kubectl-mesh reads and writes; v1alpha3, v1beta1
// and v1 share one schema, and v1 is the one every supported Istio serves.
const (
	IstioGroup      = "networking.istio.io"
	IstioVersion    = "v1"
	IstioAPIVersion = IstioGroup + "/" + IstioVersion

	KindServiceEntry    = "ServiceEntry"
	KindDestinationRule = "DestinationRule"
	KindVirtualService  = "VirtualService"
	KindGateway         = "Gateway"
)

// GVRs of the Istio kinds kubectl-mesh reads and writes, declared once for
// the plugin, the webhook and the repair loop.
var (
	ServiceEntryGVR    = schema.GroupVersionResource{Group: IstioGroup, Version: IstioVersion, Resource: "serviceentries"}
	DestinationRuleGVR = schema.GroupVersionResource{Group: IstioGroup, Version: IstioVersion, Resource: "destinationrules"}
	VirtualServiceGVR  = schema.GroupVersionResource{Group: IstioGroup, Version: IstioVersion, Resource: "virtualservices"}
	GatewayGVR         = schema.GroupVersionResource{Group: IstioGroup, Version: IstioVersion, Resource: "gateways"}
)

// MeshNamespace is where kubectl-mesh keeps its own objects: link records,
// VIP claims' webhook, mesh-webhook and its configuration.
const MeshNamespace = "mesh-system"
