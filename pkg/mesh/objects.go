package mesh

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// GatewayGVR is Istio's Gateway resource.
var GatewayGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "gateways"}

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
		"apiVersion": GatewayGVR.GroupVersion().String(),
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
	for k, v := range s.Selector {
		if labels[k] != v {
			return false
		}
	}
	return true
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

// Multi-primary names and labels, as Istio expects them.
const (
	MultiClusterLabel      = "istio/multiCluster"
	ClusterAnnotation      = "networking.istio.io/cluster"
	NetworkLabel           = "topology.istio.io/network"
	RemoteSecretPrefix     = "istio-remote-secret-"
	readerPrefix           = "kubectl-mesh-reader-"
	ServiceAccountTokenKey = corev1.ServiceAccountTokenKey
)

// ReaderName is the name of the peer's reader ServiceAccount, ClusterRole
// and ClusterRoleBinding for a calling cluster: one set per caller so
// that unlinking one caller leaves the others working.
func ReaderName(caller string) string { return readerPrefix + DNSLabel(caller) }

// RemoteSecretName is the remote secret's name for a peer cluster.
func RemoteSecretName(peer string) string { return RemoteSecretPrefix + DNSLabel(peer) }

func managed() map[string]string {
	return map[string]string{rules.ManagedByLabel: rules.ManagedByValue}
}

// ReaderServiceAccount is the peer's reader account for caller.
func ReaderServiceAccount(caller string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{Name: ReaderName(caller), Namespace: rules.IstioSystemNamespace, Labels: managed()},
	}
}

// ReaderClusterRole may read what istiod's service discovery reads in a
// remote cluster, and nothing else: no verb writes.
func ReaderClusterRole(caller string) *rbacv1.ClusterRole {
	read := []string{"get", "list", "watch"}
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: ReaderName(caller), Labels: managed()},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"services", "endpoints", "pods", "nodes", "namespaces", "configmaps", "secrets", "serviceaccounts"}, Verbs: read},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: read},
			{APIGroups: []string{"networking.istio.io", "security.istio.io", "telemetry.istio.io"}, Resources: []string{"*"}, Verbs: read},
			{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: read},
		},
	}
}

// ReaderClusterRoleBinding binds the reader role to the reader account.
func ReaderClusterRoleBinding(caller string) *rbacv1.ClusterRoleBinding {
	name := ReaderName(caller)
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: managed()},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: rules.IstioSystemNamespace}},
	}
}

// ReaderTokenSecret asks the peer's token controller for a long-lived
// token of the reader account.
func ReaderTokenSecret(caller string) *corev1.Secret {
	name := ReaderName(caller)
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name + "-token", Namespace: rules.IstioSystemNamespace, Labels: managed(),
			Annotations: map[string]string{corev1.ServiceAccountNameKey: name},
		},
		Type: corev1.SecretTypeServiceAccountToken,
	}
}

// RemoteKubeconfig is a kubeconfig that reaches server as the bearer of
// token, trusting caData (nil: the system roots).
func RemoteKubeconfig(cluster, server string, caData []byte, token string) ([]byte, error) {
	if server == "" || token == "" {
		return nil, fmt.Errorf("remote kubeconfig for %s needs a server and a token", cluster)
	}
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{cluster: {Server: server, CertificateAuthorityData: caData}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{cluster: {Token: token}},
		Contexts:       map[string]*clientcmdapi.Context{cluster: {Cluster: cluster, AuthInfo: cluster}},
		CurrentContext: cluster,
	}
	return clientcmd.Write(cfg)
}

// RemoteSecret is the Secret istiod watches in istio-system to discover a
// remote cluster's services: a kubeconfig under the cluster's name.
func RemoteSecret(cluster string, kubeconfig []byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        RemoteSecretName(cluster),
			Namespace:   rules.IstioSystemNamespace,
			Labels:      map[string]string{MultiClusterLabel: "true", rules.ManagedByLabel: rules.ManagedByValue},
			Annotations: map[string]string{ClusterAnnotation: cluster},
		},
		Type:       corev1.SecretTypeOpaque,
		StringData: nil,
		Data:       map[string][]byte{cluster: kubeconfig},
	}
}
