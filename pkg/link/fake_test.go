package link

import (
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli/clitest"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func gatewayService(name, selector, ip string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: rules.IstioSystemNamespace},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"istio": selector},
			Ports: []corev1.ServicePort{{Name: "tls", Port: rules.GatewayPort}}},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: ip}}}},
	}
}

// caller is a cluster with istiocoredns and CoreDNS, as Istio ≤ 1.7 has.
func caller() *clitest.Cluster {
	return clitest.NewCluster("c1",
		namespace(rules.IstioSystemNamespace),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "istiocoredns", Namespace: rules.IstioSystemNamespace}, Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.10"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system", ResourceVersion: "1"}, Data: map[string]string{"Corefile": clitest.Corefile}},
	)
}

// callee is a cluster with an east-west gateway, Istio's reader and the
// API server's CA published; it answers TokenRequests and access reviews.
func callee() *clitest.Cluster {
	c := clitest.NewCluster("c2",
		namespace(rules.IstioSystemNamespace),
		gatewayService("istio-eastwestgateway", "eastwestgateway", "192.0.2.2"),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: mesh.IstioReaderServiceAccount, Namespace: rules.IstioSystemNamespace}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt", Namespace: rules.IstioSystemNamespace}, Data: map[string]string{"ca.crt": "ca of c2"}},
	)
	c.KubeFake.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "token" {
			return false, nil, nil
		}
		return true, &authenticationv1.TokenRequest{Status: authenticationv1.TokenRequestStatus{Token: "reader-token", ExpirationTimestamp: metav1.NewTime(time.Now().Add(24 * time.Hour))}}, nil
	})
	c.KubeFake.PrependReactor("create", "selfsubjectaccessreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &authorizationv1.SelfSubjectAccessReview{Status: authorizationv1.SubjectAccessReviewStatus{Allowed: true}}, nil
	})
	return c
}

func corefileOf(t *testing.T, c *clitest.Cluster) string {
	t.Helper()
	cm, err := c.Kube.CoreV1().ConfigMaps("kube-system").Get(t.Context(), "coredns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm.Data["Corefile"]
}

func outputHas(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}
