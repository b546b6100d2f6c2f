package link

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// fakeCluster is a cluster on fakes. Its typed and dynamic clients keep
// separate stores, as two fakes do; tests copy between them (bridge) where
// one API server would share an object.
type fakeCluster struct {
	*cli.Cluster
	kube *kubefake.Clientset
	dyn  *dynamicfake.FakeDynamicClient
}

var listKinds = map[schema.GroupVersionResource]string{
	rules.GatewayGVR: "GatewayList", gvrConfigMap: "ConfigMapList", gvrNamespace: "NamespaceList",
	gvrSecret: "SecretList", gvrServiceAccount: "ServiceAccountList",
	gvrClusterRole: "ClusterRoleList", gvrClusterRoleBinding: "ClusterRoleBindingList",
}

func newFakeCluster(name string, objs ...runtime.Object) *fakeCluster {
	kube := kubefake.NewClientset(objs...)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds)
	rv := 100
	// Server-side apply, as the API server answers it: stored (unless
	// dry), with a new resourceVersion.
	dyn.PrependReactor("patch", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.PatchActionImpl)
		if p.GetPatchType() != types.ApplyPatchType {
			return false, nil, nil
		}
		u := &unstructured.Unstructured{}
		if err := json.Unmarshal(p.GetPatch(), &u.Object); err != nil {
			return true, nil, err
		}
		rv++
		u.SetResourceVersion(fmt.Sprint(rv))
		if len(p.GetPatchOptions().DryRun) > 0 {
			return true, u, nil
		}
		tr := dyn.Tracker()
		if _, err := tr.Get(p.GetResource(), p.GetNamespace(), p.GetName()); apierrors.IsNotFound(err) {
			return true, u, tr.Create(p.GetResource(), u, p.GetNamespace())
		}
		return true, u, tr.Update(p.GetResource(), u, p.GetNamespace())
	})
	// A dry-run write is answered, not stored, as the API server does.
	dry := func(a k8stesting.Action) (bool, runtime.Object, error) {
		if len(dryRunOf(a)) == 0 {
			return false, nil, nil
		}
		if o, ok := a.(interface{ GetObject() runtime.Object }); ok {
			return true, o.GetObject(), nil
		}
		return true, nil, nil
	}
	for _, verb := range []string{"create", "update", "delete"} {
		kube.PrependReactor(verb, "*", dry)
		dyn.PrependReactor(verb, "*", dry)
	}
	return &fakeCluster{
		Cluster: &cli.Cluster{Context: name, Config: &rest.Config{Host: "https://" + name + ".example:6443", TLSClientConfig: rest.TLSClientConfig{CAData: []byte("ca of " + name)}}, Kube: kube, Dynamic: dyn},
		kube:    kube, dyn: dyn,
	}
}

// writes are the requests of both fakes that change something.
func (c *fakeCluster) writes() []k8stesting.Action {
	var out []k8stesting.Action
	for _, a := range append(c.kube.Actions(), c.dyn.Actions()...) {
		if !slices.Contains([]string{"get", "list", "watch"}, a.GetVerb()) {
			out = append(out, a)
		}
	}
	return out
}

func (c *fakeCluster) clearActions() {
	c.kube.ClearActions()
	c.dyn.ClearActions()
}

// dryRunOf is the dryRun option of a write request.
func dryRunOf(a k8stesting.Action) []string {
	switch a := a.(type) {
	case k8stesting.CreateActionImpl:
		return a.GetCreateOptions().DryRun
	case k8stesting.UpdateActionImpl:
		return a.GetUpdateOptions().DryRun
	case k8stesting.PatchActionImpl:
		return a.GetPatchOptions().DryRun
	case k8stesting.DeleteActionImpl:
		return a.GetDeleteOptions().DryRun
	}
	return []string{"unknown action " + fmt.Sprintf("%T", a)}
}

func describe(a k8stesting.Action) string {
	name := ""
	if n, ok := a.(interface{ GetName() string }); ok {
		name = n.GetName()
	}
	if o, ok := a.(interface{ GetObject() runtime.Object }); ok && name == "" {
		if m, err := meta.Accessor(o.GetObject()); err == nil {
			name = m.GetName()
		}
	}
	return fmt.Sprintf("%s %s %s/%s", a.GetVerb(), a.GetResource().Resource, a.GetNamespace(), name)
}

const corefile = `.:53 {
    errors
    health
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
    cache 30
}
`

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
func caller() *fakeCluster {
	return newFakeCluster("c1",
		namespace(rules.IstioSystemNamespace),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "istiocoredns", Namespace: rules.IstioSystemNamespace}, Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.10"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system", ResourceVersion: "1"}, Data: map[string]string{"Corefile": corefile}},
	)
}

// callee is a cluster with an east-west gateway, Istio's reader and the
// API server's CA published; it answers TokenRequests and access reviews.
func callee() *fakeCluster {
	c := newFakeCluster("c2",
		namespace(rules.IstioSystemNamespace),
		gatewayService("istio-eastwestgateway", "eastwestgateway", "192.0.2.2"),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: mesh.IstioReaderServiceAccount, Namespace: rules.IstioSystemNamespace}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt", Namespace: rules.IstioSystemNamespace}, Data: map[string]string{"ca.crt": "ca of c2"}},
	)
	c.kube.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "token" {
			return false, nil, nil
		}
		return true, &authenticationv1.TokenRequest{Status: authenticationv1.TokenRequestStatus{Token: "reader-token", ExpirationTimestamp: metav1.NewTime(time.Now().Add(24 * time.Hour))}}, nil
	})
	c.kube.PrependReactor("create", "selfsubjectaccessreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &authorizationv1.SelfSubjectAccessReview{Status: authorizationv1.SubjectAccessReviewStatus{Allowed: true}}, nil
	})
	return c
}

// bridge copies what the dynamic client of c wrote in ns/name to its typed
// client, as one API server would hold it.
func (c *fakeCluster) bridge(t *testing.T, gvr schema.GroupVersionResource, ns, name string) {
	t.Helper()
	obj, err := c.dyn.Tracker().Get(gvr, ns, name)
	if err != nil {
		t.Fatalf("%s: %s %s/%s was not written: %v", c.Context, gvr.Resource, ns, name, err)
	}
	var cm corev1.ConfigMap
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.(*unstructured.Unstructured).Object, &cm); err != nil {
		t.Fatal(err)
	}
	if err := c.kube.Tracker().Add(&cm); err != nil {
		t.Fatal(err)
	}
}

func corefileOf(t *testing.T, c *fakeCluster) string {
	t.Helper()
	cm, err := c.kube.CoreV1().ConfigMaps("kube-system").Get(t.Context(), "coredns", metav1.GetOptions{})
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
