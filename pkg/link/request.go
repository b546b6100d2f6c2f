package link

import (
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/gateway"
)

// Request is what one link asks for, as the command parsed it.
type Request struct {
	DryRun         cli.DryRun
	SkipTrustCheck bool
	// DNSNamespace and DNSName name the DNS ConfigMap to edit; empty:
	// detect coredns or kube-dns.
	DNSNamespace, DNSName string
	// EnableDNSCapture turns Istio's DNS proxying on when there is no
	// istiocoredns; IstioRevision names the mesh config to edit.
	EnableDNSCapture bool
	IstioRevision    string
	// GatewayService (of the called cluster) and GatewayNamespace find the
	// gateway; GatewayAddress, when set, is its address instead of the
	// discovered one.
	GatewayService   string
	GatewayNamespace string
	GatewayAddress   *gateway.Address
	// MultiPrimary gives the caller's istiod a remote secret for the
	// called cluster. Networks and Servers are by context: the network
	// label of a cluster, the API server address of a called cluster.
	MultiPrimary     bool
	Networks         map[string]string
	Servers          map[string]string
	NoSecretRead     bool
	TokenExpiry      time.Duration
	TokenRenewBefore time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

func (r Request) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// Resources of the core and RBAC kinds link writes.
var (
	gvrConfigMap          = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gvrNamespace          = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	gvrSecret             = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	gvrServiceAccount     = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
	gvrClusterRole        = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}
	gvrClusterRoleBinding = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}
)
