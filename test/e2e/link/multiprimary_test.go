package link

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func TestMultiPrimaryRemoteSecretReadsOnly(t *testing.T) {
	trust(t, "cluster1", "cluster2")
	ctx := t.Context()
	c1, c2 := theLab.Cluster("cluster1"), theLab.Cluster("cluster2")
	nsBefore, err := c2.Kube.CoreV1().Namespaces().Get(ctx, "istio-system", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := kubectlMesh(t, "link", "--from", "cluster1", "--to", "cluster2", "--multi-primary", "--network", "net-two")
	t.Log(out)

	secret, err := c1.Kube.CoreV1().Secrets("istio-system").Get(ctx, "istio-remote-secret-cluster2", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("remote secret: %v", err)
	}
	if secret.Labels["istio/multiCluster"] != "true" || secret.Annotations["networking.istio.io/cluster"] != "cluster2" {
		t.Fatalf("remote secret metadata = %v %v", secret.Labels, secret.Annotations)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(secret.Data["cluster2"])
	if err != nil {
		t.Fatalf("remote secret kubeconfig: %v", err)
	}
	if cfg.Host != c2.Config.Host {
		t.Fatalf("remote kubeconfig server = %s, want %s", cfg.Host, c2.Config.Host)
	}
	remote, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := remote.CoreV1().Services("bar").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("the remote kubeconfig cannot list Services in cluster2: %v", err)
	}
	if len(svcs.Items) == 0 || svcs.Items[0].Name != "httpbin" {
		t.Fatalf("listed %v, want httpbin", svcs.Items)
	}
	_, err = remote.CoreV1().ConfigMaps("bar").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "written-by-remote"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("a write through the remote kubeconfig = %v, want Forbidden", err)
	}
	ns, err := c2.Kube.CoreV1().Namespaces().Get(ctx, "istio-system", metav1.GetOptions{})
	if err != nil || ns.Labels["topology.istio.io/network"] != "net-two" {
		t.Fatalf("istio-system network label = %v (%v)", ns.Labels, err)
	}
	if _, err := c2.Dynamic.Resource(gatewayGVR).Namespace("istio-system").Get(ctx, "cross-network-gateway", metav1.GetOptions{}); err != nil {
		t.Fatalf("*.local passthrough Gateway: %v", err)
	}

	// Again: nothing changes, the token is kept.
	again := kubectlMesh(t, "link", "--from", "cluster1", "--to", "cluster2", "--multi-primary", "--network", "net-two")
	secret2, err := c1.Kube.CoreV1().Secrets("istio-system").Get(ctx, "istio-remote-secret-cluster2", metav1.GetOptions{})
	if err != nil || secret2.ResourceVersion != secret.ResourceVersion {
		t.Fatalf("second link rewrote the remote secret (%v):\n%s", err, again)
	}

	kubectlMesh(t, "unlink", "--from", "cluster1", "--to", "cluster2")
	if _, err := c1.Kube.CoreV1().Secrets("istio-system").Get(ctx, "istio-remote-secret-cluster2", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("remote secret left behind: %v", err)
	}
	if _, err := c2.Kube.CoreV1().ServiceAccounts("istio-system").Get(ctx, "kubectl-mesh-reader-cluster1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("reader ServiceAccount left behind: %v", err)
	}
	if _, err := c2.Kube.RbacV1().ClusterRoleBindings().Get(ctx, "kubectl-mesh-reader-cluster1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("reader ClusterRoleBinding left behind: %v", err)
	}
	if _, err := c2.Kube.RbacV1().ClusterRoles().Get(ctx, "kubectl-mesh-reader-cluster1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("reader ClusterRole left behind: %v", err)
	}
	if _, err := remote.CoreV1().Services("bar").List(ctx, metav1.ListOptions{}); err == nil {
		t.Error("the remote kubeconfig still reads cluster2 after unlink")
	}
	ns, err = c2.Kube.CoreV1().Namespaces().Get(ctx, "istio-system", metav1.GetOptions{})
	if err != nil || ns.Labels["topology.istio.io/network"] != nsBefore.Labels["topology.istio.io/network"] {
		t.Fatalf("network label not restored: %v, want %v", ns.Labels, nsBefore.Labels)
	}
}
