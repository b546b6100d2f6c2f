package mesh

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// Multi-primary names and labels, as Istio spells them.
const (
	// MultiClusterLabel marks the Secrets istiod reads remote clusters
	// from; ClusterAnnotation names the cluster, as istioctl writes it.
	MultiClusterLabel  = "istio/multiCluster"
	ClusterAnnotation  = "networking.istio.io/cluster"
	NetworkLabel       = "topology.istio.io/network"
	RemoteSecretPrefix = "istio-remote-secret-"
	// IstioReaderServiceAccount is the reader account Istio installs in
	// every cluster for remote secrets (istioctl's default).
	IstioReaderServiceAccount = "istio-reader-service-account"
	// IstioReaderRoleLabel labels Istio's reader ClusterRole, under every
	// name it has had (istio-reader-<ns>, istio-reader-clusterrole-<ns>,
	// istio-reader-clusterrole-<revision>-<ns>).
	IstioReaderRoleLabel      = "app"
	IstioReaderRoleLabelValue = "istio-reader"
	// IstioReaderRoleName is the reader ClusterRole of a default
	// (revisionless) install in istio-system.
	IstioReaderRoleName = "istio-reader-clusterrole-" + rules.IstioSystemNamespace
	// DefaultClusterName is the clusterName istiod runs with when none is
	// configured (values.global.multiCluster.clusterName unset).
	DefaultClusterName = "Kubernetes"
	// IstiodClusterIDEnv is istiod's environment variable for clusterName.
	IstiodClusterIDEnv     = "CLUSTER_ID"
	ServiceAccountTokenKey = corev1.ServiceAccountTokenKey
)

// kubectl-mesh's own reader accounts, shared by every caller: one with
// Istio's reader rules, one without Secrets (--no-secret-read). Their
// names cannot collide with the per-caller kubectl-mesh-reader-<caller>
// accounts older versions of link made.
const (
	ReaderName          = "kubectl-mesh-istio-reader"
	ReaderNoSecretsName = "kubectl-mesh-istio-reader-no-secrets"
	// TokenBindingPrefix starts the name of the Secret in the peer that a
	// caller's token is bound to: deleting it revokes that token.
	TokenBindingPrefix = "kubectl-mesh-remote-token-"
	// ReaderLabel on a token binding names the reader account the token
	// belongs to; CallerLabel the calling cluster.
	ReaderLabel = "mesh.kubectl-mesh.io/reader"
	CallerLabel = "mesh.kubectl-mesh.io/caller"
	// ReaderRulesAnnotation on our reader ClusterRole says where its rules
	// come from.
	ReaderRulesAnnotation = "mesh.kubectl-mesh.io/rules-from"
	// NetworkBeforeAnnotation on an object whose network label kubectl
	// mesh set holds what the label was before (a LabelChange), so that
	// the last link that needs the label puts it back.
	NetworkBeforeAnnotation = "mesh.kubectl-mesh.io/network-label-before"
	legacyReaderPrefix      = "kubectl-mesh-reader-"
)

// IstioChartRules names the source of IstioReaderRules in messages.
const IstioChartRules = "Istio's istio-discovery chart (reader-clusterrole.yaml, default values)"

// IstioReaderRules are the rules of Istio's istio-reader-clusterrole as its
// istio-discovery chart renders them with default values (Istio's main
// branch of 2026-08, the version this project verifies with; MCS API group
// multicluster.x-k8s.io, no external istiod). link copies the installed
// Istio's own ClusterRole when the peer has one and uses these only when
// it has none. Note that Istio's role lets the reader create and delete
// MCS ServiceExports (istiod's auto-export) and create token and access
// reviews, which store nothing.
func IstioReaderRules() []rbacv1.PolicyRule {
	read := []string{"get", "list", "watch"}
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"config.istio.io", "security.istio.io", "networking.istio.io", "authentication.istio.io", "rbac.istio.io", "telemetry.istio.io", "extensions.istio.io"}, Resources: []string{"*"}, Verbs: read},
		{APIGroups: []string{""}, Resources: []string{"endpoints", "pods", "services", "nodes", "replicationcontrollers", "namespaces", "secrets", "configmaps"}, Verbs: read},
		{APIGroups: []string{"networking.istio.io"}, Resources: []string{"workloadentries"}, Verbs: []string{"get", "watch", "list"}},
		{APIGroups: []string{"networking.x-k8s.io", "gateway.networking.k8s.io"}, Resources: []string{"gateways"}, Verbs: []string{"get", "watch", "list"}},
		{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: read},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: read},
		{APIGroups: []string{"multicluster.x-k8s.io"}, Resources: []string{"serviceexports"}, Verbs: []string{"get", "list", "watch", "create", "delete"}},
		{APIGroups: []string{"multicluster.x-k8s.io"}, Resources: []string{"serviceimports"}, Verbs: read},
		{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: read},
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
	}
}

// WithoutSecrets returns rules less every grant on core Secrets; rules left
// without resources are dropped. A rule that grants Secrets through a
// wildcard cannot be narrowed and is an error.
func WithoutSecrets(in []rbacv1.PolicyRule) ([]rbacv1.PolicyRule, error) {
	out := make([]rbacv1.PolicyRule, 0, len(in))
	for i, r := range in {
		core := slices.Contains(r.APIGroups, "") || slices.Contains(r.APIGroups, "*")
		if !core {
			out = append(out, *r.DeepCopy())
			continue
		}
		if slices.Contains(r.Resources, "*") {
			return nil, fmt.Errorf("rules[%d] grants %v on every resource of the core API group, Secrets included, and cannot be narrowed", i, r.Verbs)
		}
		c := r.DeepCopy()
		c.Resources = slices.DeleteFunc(c.Resources, func(s string) bool { return s == "secrets" || strings.HasPrefix(s, "secrets/") })
		if len(c.Resources) > 0 || len(c.NonResourceURLs) > 0 {
			out = append(out, *c)
		}
	}
	return out, nil
}

func managed() map[string]string {
	return map[string]string{rules.ManagedByLabel: rules.ManagedByValue}
}

// ReaderServiceAccount is one of kubectl-mesh's shared reader accounts.
func ReaderServiceAccount(name string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: rules.IstioSystemNamespace, Labels: managed()},
	}
}

// ReaderClusterRole is the reader account's role: Istio's reader rules
// (less Secrets for the no-secrets reader), copied from from.
func ReaderClusterRole(name string, rs []rbacv1.PolicyRule, from string) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: managed(),
			Annotations: map[string]string{ReaderRulesAnnotation: from}},
		Rules: rs,
	}
}

// ReaderClusterRoleBinding binds the reader role to the reader account.
func ReaderClusterRoleBinding(name string) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: managed()},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: rules.IstioSystemNamespace}},
	}
}

// TokenBindingName is the name of caller's token binding in the peer.
func TokenBindingName(caller string) string { return TokenBindingPrefix + DNSLabel(caller) }

// TokenBinding is the Secret in the peer that caller's reader token is
// bound to (TokenRequest boundObjectRef): the API server accepts the token
// only while this Secret exists with the same UID, so deleting it revokes
// the token even when the reader account is Istio's and stays. It holds
// no data.
func TokenBinding(caller, reader string) *corev1.Secret {
	l := managed()
	l[ReaderLabel] = reader
	l[CallerLabel] = DNSLabel(caller)
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: TokenBindingName(caller), Namespace: rules.IstioSystemNamespace, Labels: l,
			Annotations: map[string]string{"mesh.kubectl-mesh.io/purpose": fmt.Sprintf("the reader token in the remote secret of %s is bound to this Secret; deleting it revokes that token", caller)}},
		Type: corev1.SecretTypeOpaque,
	}
}

// LegacyReaderName is the per-caller reader account (and ClusterRole and
// ClusterRoleBinding) of older versions of link; unlink and link remove it.
func LegacyReaderName(caller string) string { return legacyReaderPrefix + DNSLabel(caller) }

// RemoteSecretName is the remote secret's name for a cluster name, as
// istioctl create-remote-secret names it.
func RemoteSecretName(clusterName string) string { return RemoteSecretPrefix + clusterName }

// ValidateClusterName checks that a cluster name can name a remote secret
// (istioctl requires a DNS-1123 label too).
func ValidateClusterName(name string) error {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return fmt.Errorf("cluster name %q cannot name a remote secret (%s)", name, strings.Join(errs, "; "))
	}
	return nil
}

// RemoteKubeconfig is the kubeconfig istioctl create-remote-secret writes
// for bearer tokens: one cluster, context and user, all named after the
// cluster, the server, its CA (nil: the system roots) and the token.
func RemoteKubeconfig(clusterName, server string, caData []byte, token string) ([]byte, error) {
	if server == "" || token == "" {
		return nil, fmt.Errorf("remote kubeconfig for %s needs a server and a token", clusterName)
	}
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{clusterName: {Server: server, CertificateAuthorityData: caData}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{clusterName: {Token: token}},
		Contexts:       map[string]*clientcmdapi.Context{clusterName: {Cluster: clusterName, AuthInfo: clusterName}},
		CurrentContext: clusterName,
	}
	if err := clientcmd.Validate(cfg); err != nil {
		return nil, fmt.Errorf("remote kubeconfig for %s: %w", clusterName, err)
	}
	return clientcmd.Write(cfg)
}

// RemoteSecret is the Secret istiod reads a remote cluster from, shaped
// like istioctl create-remote-secret's: name istio-remote-secret-<cluster>
// in istio-system, label istio/multiCluster: "true", annotation
// networking.istio.io/cluster: <cluster>, and the kubeconfig under the
// cluster's name. kubectl-mesh adds its managed-by label so that unlink
// removes only its own.
func RemoteSecret(clusterName string, kubeconfig []byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        RemoteSecretName(clusterName),
			Namespace:   rules.IstioSystemNamespace,
			Labels:      map[string]string{MultiClusterLabel: "true", rules.ManagedByLabel: rules.ManagedByValue},
			Annotations: map[string]string{ClusterAnnotation: clusterName},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{clusterName: kubeconfig},
	}
}

// RemoteKubeconfigView is what a remote secret's kubeconfig says.
type RemoteKubeconfigView struct {
	Server string
	CAData []byte
	Token  string
}

// ReadRemoteKubeconfig reads the kubeconfig istiod would use for
// clusterName: its current context's cluster and user.
func ReadRemoteKubeconfig(b []byte) (RemoteKubeconfigView, error) {
	cfg, err := clientcmd.Load(b)
	if err != nil {
		return RemoteKubeconfigView{}, fmt.Errorf("not a kubeconfig: %w", err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil {
		return RemoteKubeconfigView{}, fmt.Errorf("the kubeconfig has no current context %q", cfg.CurrentContext)
	}
	c, u := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	if c == nil {
		return RemoteKubeconfigView{}, fmt.Errorf("the kubeconfig has no cluster %q", ctx.Cluster)
	}
	v := RemoteKubeconfigView{Server: c.Server, CAData: c.CertificateAuthorityData}
	if u != nil {
		v.Token = u.Token
	}
	return v, nil
}

// TokenClaims is what a service account token says about itself: when it
// was issued and expires (zero when it never does, as legacy token
// Secrets' tokens), its account and the object it is bound to.
type TokenClaims struct {
	Issued, Expires time.Time
	Namespace       string
	ServiceAccount  string
	BoundSecret     string
	BoundSecretUID  string
}

// ReadTokenClaims decodes a JWT's claims without verifying it: the API
// server is the judge of validity, this only says what the token claims.
func ReadTokenClaims(token string) (TokenClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return TokenClaims{}, fmt.Errorf("not a JWT (%d parts)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return TokenClaims{}, fmt.Errorf("JWT payload: %w", err)
	}
	var c struct {
		Iat, Exp int64
		// Legacy token Secrets' tokens.
		LegacyNamespace string `json:"kubernetes.io/serviceaccount/namespace"`
		LegacyName      string `json:"kubernetes.io/serviceaccount/service-account.name"`
		K8s             struct {
			Namespace      string `json:"namespace"`
			ServiceAccount struct {
				Name string `json:"name"`
			} `json:"serviceaccount"`
			Secret *struct {
				Name string `json:"name"`
				UID  string `json:"uid"`
			} `json:"secret"`
		} `json:"kubernetes.io"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return TokenClaims{}, fmt.Errorf("JWT claims: %w", err)
	}
	out := TokenClaims{Namespace: c.K8s.Namespace, ServiceAccount: c.K8s.ServiceAccount.Name}
	if out.ServiceAccount == "" {
		out.Namespace, out.ServiceAccount = c.LegacyNamespace, c.LegacyName
	}
	if c.Iat > 0 {
		out.Issued = time.Unix(c.Iat, 0).UTC()
	}
	if c.Exp > 0 {
		out.Expires = time.Unix(c.Exp, 0).UTC()
	}
	if c.K8s.Secret != nil {
		out.BoundSecret, out.BoundSecretUID = c.K8s.Secret.Name, c.K8s.Secret.UID
	}
	return out, nil
}

// RenewFrom is when a token with these claims is due for replacement: the
// renewBefore before it expires, or, with renewBefore 0, the last third of
// its lifetime. A token that never expires is never due.
func (c TokenClaims) RenewFrom(renewBefore time.Duration) time.Time {
	if c.Expires.IsZero() {
		return time.Time{}
	}
	if renewBefore <= 0 {
		life := c.Expires.Sub(c.Issued)
		if c.Issued.IsZero() || life <= 0 {
			return c.Expires
		}
		renewBefore = life / 3
	}
	return c.Expires.Add(-renewBefore)
}

// LoopbackServer reports whether an API server URL names a loopback
// address, which istiod in another cluster cannot reach (istioctl warns
// about the same).
func LoopbackServer(server string) bool {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IstiodFacts is what an istiod Deployment says about its cluster.
type IstiodFacts struct {
	Deployment  string // namespace/name
	ClusterName string // CLUSTER_ID, or Istio's default "Kubernetes"
	// ClusterNameSet says CLUSTER_ID was set explicitly.
	ClusterNameSet bool
	Image          string
}

// IstiodFactsFrom reads the istiod Deployment of a cluster: among
// Deployments labelled app=istiod, the one named istiod, else the first by
// name. ok is false when there is none.
func IstiodFactsFrom(deps []appsv1.Deployment) (IstiodFacts, bool) {
	var pick *appsv1.Deployment
	for i := range deps {
		d := &deps[i]
		if d.Name == "istiod" {
			pick = d
			break
		}
		if pick == nil || d.Name < pick.Name {
			pick = d
		}
	}
	if pick == nil {
		return IstiodFacts{}, false
	}
	f := IstiodFacts{Deployment: pick.Namespace + "/" + pick.Name, ClusterName: DefaultClusterName}
	cs := pick.Spec.Template.Spec.Containers
	i := slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == "discovery" })
	if i < 0 && len(cs) > 0 {
		i = 0
	}
	if i >= 0 {
		f.Image = cs[i].Image
		for _, e := range cs[i].Env {
			if e.Name == IstiodClusterIDEnv && e.Value != "" {
				f.ClusterName, f.ClusterNameSet = e.Value, true
			}
		}
	}
	return f, true
}

// NetworkChange reads the network label change kubectl mesh recorded on
// an object; ok is false when it recorded none.
func NetworkChange(annotations map[string]string) (LabelChange, bool) {
	raw, ok := annotations[NetworkBeforeAnnotation]
	if !ok {
		return LabelChange{}, false
	}
	var c LabelChange
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return LabelChange{}, false
	}
	return c, true
}

// SetNetwork sets the network label on an object's labels and annotations
// and records, the first time, what the label was before. It reports
// whether anything changed.
func SetNetwork(labels, annotations map[string]string, network string) (changed bool) {
	old, existed := labels[NetworkLabel]
	c, recorded := NetworkChange(annotations)
	if existed && old == network && (!recorded || c.Value == network) {
		return false
	}
	if !recorded {
		c = LabelChange{Key: NetworkLabel, Existed: existed, Before: old}
	}
	c.Value = network
	labels[NetworkLabel] = network
	RecordNetworkChange(annotations, c)
	return true
}

// RecordNetworkChange keeps c in an object's annotations.
func RecordNetworkChange(annotations map[string]string, c LabelChange) {
	b, _ := json.Marshal(c) // a struct of strings and a bool
	annotations[NetworkBeforeAnnotation] = string(b)
}

// RestoreNetwork puts the network label back as it was before kubectl mesh
// set it, when it still holds what kubectl mesh set, and drops the record.
// It says what happened; changed is false when there was nothing to do.
func RestoreNetwork(labels, annotations map[string]string) (changed bool, what string) {
	c, ok := NetworkChange(annotations)
	if !ok {
		return false, "no network label set by kubectl mesh"
	}
	delete(annotations, NetworkBeforeAnnotation)
	if labels[NetworkLabel] != c.Value {
		return true, fmt.Sprintf("label %s changed since link (now %q); left alone", NetworkLabel, labels[NetworkLabel])
	}
	if c.Existed {
		labels[NetworkLabel] = c.Before
		return true, fmt.Sprintf("label %s=%s restored", NetworkLabel, c.Before)
	}
	delete(labels, NetworkLabel)
	return true, fmt.Sprintf("label %s removed", NetworkLabel)
}
