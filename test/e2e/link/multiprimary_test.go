package link

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/tools/clientcmd/api/latest"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

// The current-Istio clusters of this package's lab (TestMain).
var currentIstio = []string{"east", "west", "north"}

// istioctlRemoteSecret is what `istioctl create-remote-secret --name
// clusterName` prints for a bearer token, following istioctl's source
// (istioctl/pkg/multicluster/remote_secret.go): createBaseKubeconfig and
// createBearerTokenKubeconfig build a kubeconfig with one cluster, context
// and user all named clusterName (server, the CA from the token Secret's
// ca.crt, no tls-server-name without --tls-server-name), encoded with
// client-go's latest.Codec; createRemoteServiceAccountSecret names the
// Secret istio-remote-secret-<clusterName>, annotates it
// networking.istio.io/cluster: <clusterName>, labels it
// istio/multiCluster: "true" and keys the kubeconfig by clusterName;
// createRemoteSecret puts it in the namespace (istio-system). It sets no
// type: the API server stores it as Opaque.
func istioctlRemoteSecret(t *testing.T, clusterName, server string, ca []byte, token string) *corev1.Secret {
	t.Helper()
	cfg := &clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{clusterName: {CertificateAuthorityData: ca, Server: server}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{clusterName: {Token: token}},
		Contexts:       map[string]*clientcmdapi.Context{clusterName: {Cluster: clusterName, AuthInfo: clusterName}},
		CurrentContext: clusterName,
	}
	var data bytes.Buffer
	if err := latest.Codec.Encode(cfg, &data); err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "istio-remote-secret-" + clusterName,
			Namespace:   "istio-system",
			Annotations: map[string]string{"networking.istio.io/cluster": clusterName},
			Labels:      map[string]string{"istio/multiCluster": "true"},
		},
		Data: map[string][]byte{clusterName: data.Bytes()},
	}
}

// compareWithIstioctl compares a remote secret link wrote with what
// istioctl prints for the same cluster, server, CA and token, field by
// field. The only field istioctl does not write is kubectl-mesh's
// managed-by label, which lets unlink remove exactly its own.
func compareWithIstioctl(t *testing.T, got *corev1.Secret, clusterName, server string, ca []byte) {
	t.Helper()
	view, err := mesh.ReadRemoteKubeconfig(got.Data[clusterName])
	if err != nil {
		t.Fatalf("remote secret %s: %v", got.Name, err)
	}
	want := istioctlRemoteSecret(t, clusterName, server, ca, view.Token)
	if got.Name != want.Name || got.Namespace != want.Namespace {
		t.Errorf("name %s/%s, istioctl: %s/%s", got.Namespace, got.Name, want.Namespace, want.Name)
	}
	if !maps.Equal(got.Annotations, want.Annotations) {
		t.Errorf("annotations %v, istioctl: %v", got.Annotations, want.Annotations)
	}
	labels := maps.Clone(got.Labels)
	if labels["app.kubernetes.io/managed-by"] != "kubectl-mesh" {
		t.Errorf("labels %v lack kubectl-mesh's managed-by", got.Labels)
	}
	delete(labels, "app.kubernetes.io/managed-by")
	if !maps.Equal(labels, want.Labels) {
		t.Errorf("labels %v, istioctl: %v (and managed-by)", got.Labels, want.Labels)
	}
	if got.Type != corev1.SecretTypeOpaque {
		t.Errorf("type %s, istioctl's is stored as Opaque", got.Type)
	}
	if !slices.Equal(slices.Sorted(maps.Keys(got.Data)), slices.Sorted(maps.Keys(want.Data))) {
		t.Errorf("data keys %v, istioctl: %v", slices.Sorted(maps.Keys(got.Data)), slices.Sorted(maps.Keys(want.Data)))
	}
	if !bytes.Equal(got.Data[clusterName], want.Data[clusterName]) {
		t.Errorf("kubeconfig differs from istioctl's:\n%s\nistioctl:\n%s", redact(got.Data[clusterName]), redact(want.Data[clusterName]))
	}
}

func redact(kubeconfig []byte) string {
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return err.Error()
	}
	for _, u := range cfg.AuthInfos {
		u.Token = "REDACTED"
	}
	b, _ := clientcmd.Write(*cfg)
	return string(b)
}

func remoteSecret(t *testing.T, cluster, name string) *corev1.Secret {
	t.Helper()
	s, err := theLab.Cluster(cluster).Kube.CoreV1().Secrets("istio-system").Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("%s: remote secret %s: %v", cluster, name, err)
	}
	return s
}

// remoteConfig is the client configuration istiod builds from a remote
// secret's kubeconfig.
func remoteConfig(t *testing.T, s *corev1.Secret, clusterName string) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data[clusterName])
	if err != nil {
		t.Fatalf("remote secret %s: %v", s.Name, err)
	}
	return cfg
}

// linkMultiPrimary links from → to with --multi-primary and unlinks it all
// when the test ends.
func linkMultiPrimary(t *testing.T, from, to string, args ...string) string {
	t.Helper()
	out := kubectlMesh(t, append([]string{"link", "--from", from, "--to", to, "--multi-primary"}, args...)...)
	t.Cleanup(func() {
		_, _, _ = theLab.Kubectl(context.Background(), nil, "mesh", "unlink", "--from", from, "--to", to)
	})
	return out
}

// eachWriteForbidden tries writes through a remote secret's client, and
// asks the API server about every write verb on every resource Istio's
// reader role names and more: only the two Istio's own role grants (MCS
// ServiceExports, for istiod's auto-export, and the token and access
// reviews, which store nothing) are allowed.
func eachWriteForbidden(t *testing.T, cfg *rest.Config) {
	t.Helper()
	ctx := t.Context()
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 200, 400 // hundreds of access reviews
	kube := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	writes := map[string]error{}
	_, writes["create configmap"] = kube.CoreV1().ConfigMaps(lab.SampleNamespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "written-by-remote"}}, metav1.CreateOptions{})
	_, writes["create secret"] = kube.CoreV1().Secrets("istio-system").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "written-by-remote"}}, metav1.CreateOptions{})
	_, writes["patch service"] = kube.CoreV1().Services(lab.SampleNamespace).Patch(ctx, "helloworld", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
	writes["delete pod"] = kube.CoreV1().Pods(lab.SampleNamespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	_, writes["patch namespace"] = kube.CoreV1().Namespaces().Patch(ctx, "istio-system", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
	_, writes["create clusterrole"] = kube.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "written-by-remote"}}, metav1.CreateOptions{})
	writes["delete endpointslices"] = kube.DiscoveryV1().EndpointSlices(lab.SampleNamespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	gw := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": map[string]any{"name": "written-by-remote", "namespace": "istio-system"}, "spec": map[string]any{}}}
	_, writes["create gateway"] = dyn.Resource(rules.GatewayGVR).Namespace("istio-system").Create(ctx, gw, metav1.CreateOptions{})
	for what, err := range writes {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s through the remote secret = %v, want Forbidden", what, err)
		}
	}
	allowed := []string{"create multicluster.x-k8s.io/serviceexports", "delete multicluster.x-k8s.io/serviceexports",
		"create authentication.k8s.io/tokenreviews", "create authorization.k8s.io/subjectaccessreviews"}
	var got []string
	for _, res := range []string{"/configmaps", "/secrets", "/services", "/pods", "/endpoints", "/namespaces", "/nodes", "/serviceaccounts", "/replicationcontrollers",
		"apps/deployments", "apps/replicasets", "discovery.k8s.io/endpointslices", "networking.istio.io/gateways", "networking.istio.io/serviceentries",
		"networking.istio.io/workloadentries", "security.istio.io/authorizationpolicies", "telemetry.istio.io/telemetries", "gateway.networking.k8s.io/gateways",
		"rbac.authorization.k8s.io/clusterroles", "rbac.authorization.k8s.io/clusterrolebindings", "apiextensions.k8s.io/customresourcedefinitions",
		"multicluster.x-k8s.io/serviceexports", "multicluster.x-k8s.io/serviceimports", "authentication.k8s.io/tokenreviews", "authorization.k8s.io/subjectaccessreviews",
		"admissionregistration.k8s.io/mutatingwebhookconfigurations"} {
		group, resource, _ := strings.Cut(res, "/")
		for _, verb := range []string{"create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate"} {
			rev, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Namespace: "istio-system"},
			}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rev.Status.Allowed {
				got = append(got, verb+" "+res)
			}
		}
	}
	if !slices.Equal(got, allowed) {
		t.Errorf("the remote secret's token may %v, want only Istio's %v", got, allowed)
	}
}

// TestMultiPrimaryLikeIstioctl: link --multi-primary --network in both
// directions between two current-Istio clusters writes remote secrets
// equal to istioctl's, whose clients list the peer's Services and
// EndpointSlices, may write nothing, and (Istio's reader) read Secrets;
// status finds nothing wrong; a re-run changes nothing; unlink
// --multi-primary removes exactly what link added.
func TestMultiPrimaryLikeIstioctl(t *testing.T) {
	trust(t, "east", "west")
	ctx := t.Context()
	east, west := theLab.Cluster("east"), theLab.Cluster("west")
	nsBefore := map[string]map[string]string{}
	for _, c := range []*lab.Cluster{east, west} {
		ns, err := c.Kube.CoreV1().Namespaces().Get(ctx, "istio-system", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		nsBefore[c.Name] = ns.Labels
	}
	out1 := linkMultiPrimary(t, "east", "west", "--network", "net-west")
	out2 := linkMultiPrimary(t, "west", "east", "--network", "net-east")
	t.Log(out1, out2)
	for _, want := range []string{"cluster name", "west (clusterName of istiod istio-system/istiod)", "ServiceAccount istio-system/istio-reader-service-account (Istio's",
		"reader token", "TokenRequest for ServiceAccount istio-system/istio-reader-service-account, bound to Secret istio-system/kubectl-mesh-remote-token-east",
		"Secret istio-system/istio-remote-secret-west", "namespace istio-system labelled topology.istio.io/network=net-west",
		"Service istio-system/istio-eastwestgateway labelled topology.istio.io/network=net-west", lab.EastWestIPOf(4) + ":15443 (LoadBalancerIP) of Service istio-system/istio-eastwestgateway"} {
		if !strings.Contains(out1, want) {
			t.Errorf("link east -> west output lacks %q:\n%s", want, out1)
		}
	}
	for _, d := range []struct {
		from, to string
		peer     *lab.Cluster
		network  string
	}{{"east", "west", west, "net-west"}, {"west", "east", east, "net-east"}} {
		s := remoteSecret(t, d.from, "istio-remote-secret-"+d.to)
		compareWithIstioctl(t, s, d.to, d.peer.Config.Host, d.peer.Config.CAData)
		cfg := remoteConfig(t, s, d.to)
		remote := kubernetes.NewForConfigOrDie(cfg)
		svcs, err := remote.CoreV1().Services("").List(ctx, metav1.ListOptions{})
		if err != nil || !slices.ContainsFunc(svcs.Items, func(s corev1.Service) bool { return s.Namespace == lab.SampleNamespace && s.Name == "helloworld" }) {
			t.Fatalf("%s's remote secret lists Services of %s: %v, %d", d.from, d.to, err, len(svcs.Items))
		}
		eps, err := remote.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{})
		if err != nil || !slices.ContainsFunc(eps.Items, func(s discoveryv1.EndpointSlice) bool { return s.Labels[discoveryv1.LabelServiceName] == "helloworld" }) {
			t.Fatalf("%s's remote secret lists EndpointSlices of %s: %v", d.from, d.to, err)
		}
		if _, err := remote.CoreV1().Secrets("istio-system").Get(ctx, "cacerts", metav1.GetOptions{}); err != nil {
			t.Errorf("Istio's reader reads Secrets, as Istio's role grants: %v", err)
		}
		eachWriteForbidden(t, cfg)
		ns, _ := d.peer.Kube.CoreV1().Namespaces().Get(ctx, "istio-system", metav1.GetOptions{})
		ew, _ := d.peer.Kube.CoreV1().Services("istio-system").Get(ctx, "istio-eastwestgateway", metav1.GetOptions{})
		if ns.Labels[mesh.NetworkLabel] != d.network || ew.Labels[mesh.NetworkLabel] != d.network {
			t.Errorf("%s network labels: istio-system %q, east-west gateway %q, want %s", d.to, ns.Labels[mesh.NetworkLabel], ew.Labels[mesh.NetworkLabel], d.network)
		}
		gw, err := d.peer.Dynamic.Resource(rules.GatewayGVR).Namespace("istio-system").Get(ctx, "cross-network-gateway", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: cross-network-gateway: %v", d.to, err)
		}
		if sel, _, _ := unstructured.NestedStringMap(gw.Object, "spec", "selector"); sel["istio"] != "eastwestgateway" {
			t.Errorf("%s: cross-network-gateway selects %v, want the east-west gateway", d.to, sel)
		}
	}

	report := kubectlMesh(t, "status", "--contexts", "east,west", "-o", "json")
	var r struct {
		Clusters []struct {
			Context, ClusterName, MeshID, Network string
			RemoteSecrets                         []mesh.RemoteSecretStatus
		}
		Problems []mesh.Problem
	}
	if err := json.Unmarshal([]byte(report), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 0 {
		t.Fatalf("status of a clean multi-primary mesh reports problems:\n%s", report)
	}
	for _, c := range r.Clusters {
		if len(c.RemoteSecrets) != 1 || c.MeshID != lab.CurrentMeshID || c.ClusterName != c.Context {
			t.Fatalf("status of %s = %+v", c.Context, c)
		}
		rs := c.RemoteSecrets[0]
		if !rs.Answers || !rs.ListServices || !rs.ListEndpointSlices || !rs.ReadSecrets || rs.Expires == nil || time.Until(*rs.Expires) < 360*24*time.Hour || rs.Peer == c.Context {
			t.Errorf("remote secret of %s = %+v", c.Context, rs)
		}
	}
	table := kubectlMesh(t, "status", "--contexts", "east,west")
	for _, want := range []string{"REMOTE SECRET", "east: istio-system/istio-remote-secret-west", "reads (cacerts too)", "MESH ID", lab.CurrentMeshID, "No problems found."} {
		if !strings.Contains(table, want) {
			t.Errorf("status table lacks %q:\n%s", want, table)
		}
	}

	// Again: not a resourceVersion changes, the tokens are kept.
	rv := remoteSecret(t, "east", "istio-remote-secret-west").ResourceVersion
	again := kubectlMesh(t, "link", "--from", "east", "--to", "west", "--multi-primary", "--network", "net-west")
	if strings.Contains(again, "changed") || remoteSecret(t, "east", "istio-remote-secret-west").ResourceVersion != rv {
		t.Errorf("a second link changed something:\n%s", again)
	}

	// unlink --multi-primary east -> west: the secret and the token go,
	// west's network labels stay while west -> east uses them.
	oldCfg := remoteConfig(t, remoteSecret(t, "east", "istio-remote-secret-west"), "west")
	kubectlMesh(t, "unlink", "--from", "east", "--to", "west", "--multi-primary")
	if _, err := east.Kube.CoreV1().Secrets("istio-system").Get(ctx, "istio-remote-secret-west", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("remote secret left behind: %v", err)
	}
	if _, err := west.Kube.CoreV1().ServiceAccounts("istio-system").Get(ctx, "istio-reader-service-account", metav1.GetOptions{}); err != nil {
		t.Errorf("unlink removed Istio's reader account: %v", err)
	}
	tokenRejected(t, oldCfg)
	if ns, _ := west.Kube.CoreV1().Namespaces().Get(ctx, "istio-system", metav1.GetOptions{}); ns.Labels[mesh.NetworkLabel] != "net-west" {
		t.Errorf("west's network label removed while west -> east needs it: %v", ns.Labels)
	}
	if rec := configMap(t, "east", "mesh-system", "mesh-link-west"); strings.Contains(rec.Data["record.json"], "multiPrimary") {
		t.Errorf("the link record keeps its multi-primary part:\n%s", rec.Data["record.json"])
	}
	kubectlMesh(t, "unlink", "--from", "west", "--to", "east", "--multi-primary")
	for _, c := range []*lab.Cluster{east, west} {
		ns, _ := c.Kube.CoreV1().Namespaces().Get(ctx, "istio-system", metav1.GetOptions{})
		ew, _ := c.Kube.CoreV1().Services("istio-system").Get(ctx, "istio-eastwestgateway", metav1.GetOptions{})
		if !maps.Equal(ns.Labels, nsBefore[c.Name]) || ew.Labels[mesh.NetworkLabel] != lab.NetworkOf(c.Name) || ns.Annotations[mesh.NetworkBeforeAnnotation] != "" || ew.Annotations[mesh.NetworkBeforeAnnotation] != "" {
			t.Errorf("%s network labels not restored: istio-system %v %v, east-west gateway %v %v", c.Name, ns.Labels, ns.Annotations, ew.Labels, ew.Annotations)
		}
		if bs, _ := c.Kube.CoreV1().Secrets("istio-system").List(ctx, metav1.ListOptions{LabelSelector: mesh.CallerLabel}); len(bs.Items) != 0 {
			t.Errorf("%s: token bindings left: %v", c.Name, bs.Items)
		}
	}
}

// tokenRejected waits until the API server rejects a revoked token (its
// authenticator sees the deleted binding through an informer).
func tokenRejected(t *testing.T, cfg *rest.Config) {
	t.Helper()
	kube := kubernetes.NewForConfigOrDie(cfg)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := kube.CoreV1().Services("").List(t.Context(), metav1.ListOptions{Limit: 1})
		if apierrors.IsUnauthorized(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revoked token still reads the peer: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestMultiPrimaryNoSecretRead: --no-secret-read gives two callers of west
// kubectl-mesh's reader with the installed Istio's reader rules less
// Secrets: their tokens list Services but get Forbidden on Secrets; status
// says so; unlink keeps the reader while the other caller uses it and
// removes it with the last.
func TestMultiPrimaryNoSecretRead(t *testing.T) {
	trust(t, "east", "west", "north")
	ctx := t.Context()
	west := theLab.Cluster("west")
	linkMultiPrimary(t, "east", "west", "--no-secret-read")
	out := linkMultiPrimary(t, "north", "west", "--no-secret-read")
	if !strings.Contains(out, "ClusterRole kubectl-mesh-istio-reader-no-secrets (Istio's reader rules less Secrets, from ClusterRole istio-reader-clusterrole-istio-system)") {
		t.Errorf("link does not say where the reader rules come from:\n%s", out)
	}
	installed, err := west.Kube.RbacV1().ClusterRoles().Get(ctx, "istio-reader-clusterrole-istio-system", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ours, err := west.Kube.RbacV1().ClusterRoles().Get(ctx, mesh.ReaderNoSecretsName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := mesh.WithoutSecrets(installed.Rules)
	if fmt.Sprint(ours.Rules) != fmt.Sprint(want) || strings.Contains(fmt.Sprint(ours.Rules), "secrets") {
		t.Fatalf("reader rules\n%v\nwant the installed Istio's less Secrets\n%v", ours.Rules, want)
	}
	for _, caller := range []string{"east", "north"} {
		cfg := remoteConfig(t, remoteSecret(t, caller, "istio-remote-secret-west"), "west")
		remote := kubernetes.NewForConfigOrDie(cfg)
		if _, err := remote.CoreV1().Services(lab.SampleNamespace).List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("%s's reader lists Services: %v", caller, err)
		}
		if _, err := remote.CoreV1().Secrets("istio-system").Get(ctx, "cacerts", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("%s's reader gets istio-system/cacerts: %v, want Forbidden", caller, err)
		}
		if _, err := remote.CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("%s's reader lists Secrets: %v, want Forbidden", caller, err)
		}
	}
	table := kubectlMesh(t, "status", "--contexts", "east,west,north")
	if !strings.Contains(table, "east: istio-system/istio-remote-secret-west") || strings.Contains(table, "reads (cacerts too)") {
		t.Errorf("status does not say the readers may not read Secrets:\n%s", table)
	}

	out = kubectlMesh(t, "unlink", "--from", "east", "--to", "west")
	if !strings.Contains(out, "kept: the remote secrets of north use it") {
		t.Errorf("unlink does not keep the reader north uses:\n%s", out)
	}
	if _, err := west.Kube.RbacV1().ClusterRoles().Get(ctx, mesh.ReaderNoSecretsName, metav1.GetOptions{}); err != nil {
		t.Fatalf("the reader north uses was removed: %v", err)
	}
	kubectlMesh(t, "unlink", "--from", "north", "--to", "west")
	for what, get := range map[string]func() error{
		"ServiceAccount": func() error {
			_, err := west.Kube.CoreV1().ServiceAccounts("istio-system").Get(ctx, mesh.ReaderNoSecretsName, metav1.GetOptions{})
			return err
		},
		"ClusterRole": func() error {
			_, err := west.Kube.RbacV1().ClusterRoles().Get(ctx, mesh.ReaderNoSecretsName, metav1.GetOptions{})
			return err
		},
		"ClusterRoleBinding": func() error {
			_, err := west.Kube.RbacV1().ClusterRoleBindings().Get(ctx, mesh.ReaderNoSecretsName, metav1.GetOptions{})
			return err
		},
	} {
		if err := get(); !apierrors.IsNotFound(err) {
			t.Errorf("reader %s left behind after the last unlink: %v", what, err)
		}
	}
}

// TestMultiPrimaryTokenRenewal: a re-run within the renewal window replaces
// the token and revokes the one it replaces.
func TestMultiPrimaryTokenRenewal(t *testing.T) {
	trust(t, "east", "west")
	linkMultiPrimary(t, "east", "west", "--token-expiry", "2h")
	old := remoteSecret(t, "east", "istio-remote-secret-west")
	again := kubectlMesh(t, "link", "--from", "east", "--to", "west", "--multi-primary", "--token-expiry", "2h")
	if strings.Contains(again, "changed") {
		t.Fatalf("a re-run outside the renewal window changed something:\n%s", again)
	}
	time.Sleep(3 * time.Second)
	renewed := kubectlMesh(t, "link", "--from", "east", "--to", "west", "--multi-primary", "--token-expiry", "2h", "--token-renew-before", "1h59m58s")
	if !strings.Contains(renewed, "within its renewal window") || !strings.Contains(renewed, "the token it replaces is revoked") {
		t.Errorf("renewal not reported:\n%s", renewed)
	}
	fresh := remoteSecret(t, "east", "istio-remote-secret-west")
	if bytes.Equal(fresh.Data["west"], old.Data["west"]) {
		t.Fatal("the token was not replaced")
	}
	tokenRejected(t, remoteConfig(t, old, "west"))
	if _, err := kubernetes.NewForConfigOrDie(remoteConfig(t, fresh, "west")).CoreV1().Services("").List(t.Context(), metav1.ListOptions{Limit: 1}); err != nil {
		t.Fatalf("the new token: %v", err)
	}
}

// TestMultiPrimaryStatusProblems: status reports each broken piece of a
// multi-primary mesh with its object and fix, and nothing else.
func TestMultiPrimaryStatusProblems(t *testing.T) {
	trust(t, "east", "west")
	ctx := t.Context()
	east, west := theLab.Cluster("east"), theLab.Cluster("west")
	linkMultiPrimary(t, "east", "west", "--network", "net-west")
	linkMultiPrimary(t, "west", "east", "--network", "net-east")
	secrets := east.Kube.CoreV1().Secrets("istio-system")
	// editKubeconfig changes east's remote secret for west until the test ends.
	editKubeconfig := func(t *testing.T, edit func(*clientcmdapi.Config)) {
		s := remoteSecret(t, "east", "istio-remote-secret-west")
		orig := maps.Clone(s.Data)
		cfg, err := clientcmd.Load(s.Data["west"])
		if err != nil {
			t.Fatal(err)
		}
		edit(cfg)
		if s.Data["west"], err = clientcmd.Write(*cfg); err != nil {
			t.Fatal(err)
		}
		if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			s, _ := secrets.Get(context.Background(), "istio-remote-secret-west", metav1.GetOptions{})
			s.Data = orig
			_, _ = secrets.Update(context.Background(), s, metav1.UpdateOptions{})
		})
	}
	fakeJWT := func(exp time.Time) string {
		enc := base64.RawURLEncoding.EncodeToString
		claims, _ := json.Marshal(map[string]any{"iat": exp.Add(-time.Hour).Unix(), "exp": exp.Unix(),
			"kubernetes.io": map[string]any{"namespace": "istio-system", "serviceaccount": map[string]any{"name": "istio-reader-service-account"}}})
		return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(claims) + "." + enc([]byte("not signed by west"))
	}
	tests := map[string]struct {
		inject   func(t *testing.T)
		kind     string
		object   string
		wantText string
		also     []string // other kinds the injection causes
	}{
		"expired token": {
			inject: func(t *testing.T) {
				editKubeconfig(t, func(c *clientcmdapi.Config) { c.AuthInfos["west"].Token = fakeJWT(time.Now().Add(-time.Hour)) })
			},
			kind: mesh.ProblemRemoteTokenExpired, object: "istio-remote-secret-west", wantText: "expired at",
		},
		"invalid token": {
			inject: func(t *testing.T) {
				editKubeconfig(t, func(c *clientcmdapi.Config) { c.AuthInfos["west"].Token = fakeJWT(time.Now().Add(time.Hour)) })
			},
			kind: mesh.ProblemRemoteTokenInvalid, object: "istio-remote-secret-west", wantText: "rejects the token",
		},
		"unreachable server": {
			inject: func(t *testing.T) {
				editKubeconfig(t, func(c *clientcmdapi.Config) { c.Clusters["west"].Server = "https://127.0.0.1:1" })
			},
			kind: mesh.ProblemRemoteUnreachable, object: "istio-remote-secret-west", wantText: "https://127.0.0.1:1",
		},
		"duplicate cluster name": {
			inject: func(t *testing.T) {
				setClusterID(t, "west", "east")
			},
			kind: mesh.ProblemDuplicateCluster, object: "istiod", wantText: "clusterName east",
			also: []string{mesh.ProblemClusterNameMismatch, mesh.ProblemDuplicateCluster},
		},
		"missing network label": {
			inject: func(t *testing.T) {
				ns, _ := west.Kube.CoreV1().Namespaces().Get(ctx, "istio-system", metav1.GetOptions{})
				before := ns.Labels[mesh.NetworkLabel]
				delete(ns.Labels, mesh.NetworkLabel)
				if _, err := west.Kube.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					ns, _ := west.Kube.CoreV1().Namespaces().Get(context.Background(), "istio-system", metav1.GetOptions{})
					ns.Labels[mesh.NetworkLabel] = before
					_, _ = west.Kube.CoreV1().Namespaces().Update(context.Background(), ns, metav1.UpdateOptions{})
				})
			},
			kind: mesh.ProblemNoNetworkLabel, object: "namespace istio-system", wantText: "west has no topology.istio.io/network",
		},
		"gateway without *.local passthrough": {
			inject: func(t *testing.T) {
				gws := west.Dynamic.Resource(rules.GatewayGVR).Namespace("istio-system")
				gw, err := gws.Get(ctx, "cross-network-gateway", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if err := gws.Delete(ctx, gw.GetName(), metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					gw.SetResourceVersion("")
					_, _ = gws.Create(context.Background(), gw, metav1.CreateOptions{})
				})
			},
			kind: mesh.ProblemNetworkNoPassthru, object: "istio-eastwestgateway", wantText: "*.local",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.inject(t)
			out, stderr := meshFails(t, "status", "--contexts", "east,west", "-o", "json", "--peer-timeout", "2s")
			r := decodeStatus(t, out)
			for _, p := range r.Problems {
				if p.Kind != tc.kind && !slices.Contains(tc.also, p.Kind) {
					t.Errorf("a problem that is not about %s: %+v", name, p)
				}
			}
			if !hasProblem(r.Problems, tc.kind, tc.object, tc.wantText) {
				t.Fatalf("status does not report %s on %s mentioning %q:\n%s\n%s", tc.kind, tc.object, tc.wantText, out, stderr)
			}
		})
	}
	// Clean again once every injection is undone.
	if out := kubectlMesh(t, "status", "--contexts", "east,west", "-o", "json"); len(decodeStatus(t, out).Problems) != 0 {
		t.Fatalf("problems after the injections were undone:\n%s", out)
	}
}

// setClusterID sets the CLUSTER_ID of istiod in cluster until the test ends.
func setClusterID(t *testing.T, cluster, id string) {
	t.Helper()
	deps := theLab.Cluster(cluster).Kube.AppsV1().Deployments("istio-system")
	set := func(ctx context.Context, v string) error {
		d, err := deps.Get(ctx, "istiod", metav1.GetOptions{})
		if err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "CLUSTER_ID", Value: v}}
		_, err = deps.Update(ctx, d, metav1.UpdateOptions{})
		return err
	}
	if err := set(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set(context.Background(), cluster) })
}

// TestMultiPrimarySameNetwork: two clusters on one network need no
// gateway step; that they have different gateways is a status problem.
func TestMultiPrimarySameNetwork(t *testing.T) {
	trust(t, "east", "west")
	out := linkMultiPrimary(t, "east", "west", "--bidirectional", "--network", "shared")
	if n := strings.Count(out, "both clusters are on network shared"); n != 2 {
		t.Errorf("the gateway step is not skipped both ways (%d):\n%s", n, out)
	}
	stdout, _ := meshFails(t, "status", "--contexts", "east,west", "-o", "json")
	r := decodeStatus(t, stdout)
	if len(r.Problems) != 1 || r.Problems[0].Kind != mesh.ProblemNetworkConflict || !strings.Contains(r.Problems[0].Message, "both claim network shared") {
		t.Fatalf("status = %+v, want one %s", r.Problems, mesh.ProblemNetworkConflict)
	}
	kubectlMesh(t, "unlink", "--from", "east", "--to", "west", "--bidirectional")
	for _, c := range []string{"east", "west"} {
		ns, _ := theLab.Cluster(c).Kube.CoreV1().Namespaces().Get(t.Context(), "istio-system", metav1.GetOptions{})
		if ns.Labels[mesh.NetworkLabel] != lab.NetworkOf(c) {
			t.Errorf("%s network label not restored: %v", c, ns.Labels)
		}
	}
}

// TestMultiPrimaryWithoutEastWestGateway: link says how to install Istio's
// east-west gateway instead of using another gateway, and refuses a peer
// whose istiod runs with Istio's default cluster name.
func TestMultiPrimaryWithoutEastWestGateway(t *testing.T) {
	trust(t, "east", "cluster3")
	out, stderr, err := theLab.Kubectl(t.Context(), nil, "mesh", "link", "--from", "east", "--to", "cluster3", "--multi-primary", "--network", "net-three", "--dry-run=client")
	if err == nil {
		t.Fatalf("link to a cluster whose istiod has no clusterName succeeded:\n%s", out)
	}
	for _, want := range []string{"helm install istio-eastwestgateway istio/gateway -n istio-system --set name=istio-eastwestgateway --set networkGateway=net-three",
		"kind: IstioOperator", "topology.istio.io/network: net-three", "ISTIO_META_REQUESTED_NETWORK_VIEW", `cluster name "Kubernetes"`, "values.global.multiCluster.clusterName"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("link's warning and error lack %q:\n%s", want, stderr)
		}
	}
	if !strings.Contains(out, "action needed") {
		t.Errorf("link does not say an action is needed:\n%s", out)
	}
}
