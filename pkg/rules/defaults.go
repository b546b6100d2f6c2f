package rules

// GatewayPort is the port of the ingress gateway's SNI-aware
// AUTO_PASSTHROUGH listener. Every endpoint of a `.global` ServiceEntry
// maps every service port to it; it never depends on the service.
const GatewayPort = 15443

// GatewayPortName is the name of the gateway Service port that serves
// GatewayPort in a stock Istio installation.
const GatewayPortName = "tls"

// ServiceEntry locations and resolutions, as Istio spells them.
const (
	LocationMeshInternal = "MESH_INTERNAL"
	LocationMeshExternal = "MESH_EXTERNAL"

	ResolutionNone          = "NONE"
	ResolutionStatic        = "STATIC"
	ResolutionDNS           = "DNS"
	ResolutionDNSRoundRobin = "DNS_ROUND_ROBIN"
)

// Defaults a remote ServiceEntry gets when it leaves them out: remote
// services are inside the mesh (they share the root of trust), and the
// remote gateway is usually reached by a DNS name or an address that
// DNS resolution also handles.
const (
	DefaultLocation   = LocationMeshInternal
	DefaultResolution = ResolutionDNS
)

// ClusterLabel is the endpoint label that names the cluster an endpoint of a
// `.global` ServiceEntry leads to; `.global` DestinationRule subsets select
// it (never pod labels, which the caller's sidecar cannot see).
const ClusterLabel = "cluster"

// ExternalNetwork is the network an egress-variant endpoint is put on so
// that the sidecar sends it through the local egress gateway.
const ExternalNetwork = "external"

// ManagedByLabel and ManagedByValue mark every object kubectl-mesh writes, so
// that cleanup touches exactly those.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "kubectl-mesh"
	FieldManager   = "kubectl-mesh"
)

// IstioSystemNamespace is where Istio's control plane, gateways and the
// cacerts secret live.
const IstioSystemNamespace = "istio-system"

// IsManaged reports whether labels mark an object kubectl-mesh wrote; only
// such objects are ever changed by force or deleted.
func IsManaged(labels map[string]string) bool {
	return labels[ManagedByLabel] == ManagedByValue
}
