package clitest

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	kubescheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

// Cluster is one fake cluster: the clients the commands get (cli.Cluster)
// and the fakes behind them, for tests that add reactors or look at the
// requests.
type Cluster struct {
	*cli.Cluster
	KubeFake    *kubefake.Clientset
	DynamicFake *dynamicfake.FakeDynamicClient
	rv          atomic.Int64
}

// kinds are the resources the commands reach through the dynamic client,
// with their kinds: the dynamic fake panics on a List of a resource whose
// List kind it was not told.
var kinds = map[schema.GroupVersionResource]string{
	rules.ServiceEntryGVR:                        rules.KindServiceEntry,
	rules.DestinationRuleGVR:                     rules.KindDestinationRule,
	rules.GatewayGVR:                             rules.KindGateway,
	rules.VirtualServiceGVR:                      rules.KindVirtualService,
	vip.GVR:                                      vip.Kind,
	{Version: "v1", Resource: "configmaps"}:      "ConfigMap",
	{Version: "v1", Resource: "namespaces"}:      "Namespace",
	{Version: "v1", Resource: "secrets"}:         "Secret",
	{Version: "v1", Resource: "services"}:        "Service",
	{Version: "v1", Resource: "serviceaccounts"}: "ServiceAccount",
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}:        "ClusterRole",
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}: "ClusterRoleBinding",
}

// NewCluster is a cluster reached as context, holding objs: typed objects
// and unstructured ones of the kinds above. It panics on an object it
// cannot hold, as the client-go fakes do.
func NewCluster(context string, objs ...runtime.Object) *Cluster {
	var typed []runtime.Object
	var dynamic []*unstructured.Unstructured
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok {
			dynamic = append(dynamic, u)
		} else {
			typed = append(typed, o)
		}
	}
	listKinds := map[schema.GroupVersionResource]string{}
	for gvr, kind := range kinds {
		listKinds[gvr] = kind + "List"
	}
	c := &Cluster{
		KubeFake:    kubefake.NewClientset(typed...),
		DynamicFake: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds),
	}
	c.Cluster = &cli.Cluster{
		Context: context,
		Config:  &rest.Config{Host: server(context), TLSClientConfig: rest.TLSClientConfig{CAData: []byte("ca of " + context)}},
		Kube:    c.KubeFake, Dynamic: c.DynamicFake,
	}
	c.rv.Store(100)
	c.serve()
	for _, u := range dynamic {
		if err := c.add(u); err != nil {
			panic(err)
		}
	}
	return c
}

// server is the address of a context's API server, in its Config and in
// the kubeconfig.
func server(context string) string { return "https://" + context + ".example:6443" }

// Load adds objects written as YAML documents, one per string, each of a
// kind above (Istio's, VIPClaims, or Kubernetes' own), as if they had been
// there before the test: no request is recorded.
func (c *Cluster) Load(t testing.TB, docs ...string) *Cluster {
	t.Helper()
	for _, d := range docs {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(d), &u.Object); err != nil {
			t.Fatalf("%s: %v\n%s", c.Context, err, d)
		}
		if err := c.add(u); err != nil {
			t.Fatalf("%s: %v\n%s", c.Context, err, d)
		}
	}
	return c
}

// add stores u, unrecorded, where the cluster keeps its kind.
func (c *Cluster) add(u *unstructured.Unstructured) error {
	gvk := u.GroupVersionKind()
	for gvr, kind := range kinds {
		if kind == gvk.Kind && gvr.Group == gvk.Group {
			return c.put(gvr, u, true)
		}
	}
	return fmt.Errorf("clitest: no resource for kind %s", gvk)
}

// Stored is the object as the cluster holds it now, read without a
// request: apierrors.IsNotFound when it does not.
func (c *Cluster) Stored(gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error) {
	if gvk, ok := kubernetesKind(gvr); ok {
		obj, err := c.KubeFake.Tracker().Get(gvr, ns, name)
		if err != nil {
			return nil, err
		}
		u, err := toDynamic(obj, gvk)
		if err != nil {
			return nil, err
		}
		return u.(*unstructured.Unstructured), nil
	}
	obj, err := c.DynamicFake.Tracker().Get(gvr, ns, name)
	if err != nil {
		return nil, err
	}
	return obj.(*unstructured.Unstructured), nil
}

// put stores u as the API server keeps it: Kubernetes' kinds typed in the
// typed fake's tracker (which the dynamic client shares), the others in
// the dynamic fake's.
func (c *Cluster) put(gvr schema.GroupVersionResource, u *unstructured.Unstructured, create bool) error {
	tracker := c.DynamicFake.Tracker()
	var obj runtime.Object = u
	if gvk, ok := kubernetesKind(gvr); ok {
		typed, err := toTyped(u, gvk)
		if err != nil {
			return err
		}
		tracker, obj = c.KubeFake.Tracker(), typed
	}
	if create {
		return tracker.Create(gvr, obj, u.GetNamespace())
	}
	return tracker.Update(gvr, obj, u.GetNamespace())
}

// Actions are the requests both clients received since the last Reset.
func (c *Cluster) Actions() []k8stesting.Action {
	return append(c.KubeFake.Actions(), c.DynamicFake.Actions()...)
}

// Writes are the requests since the last Reset that change something, or
// would without a dry run: everything but get, list and watch.
func (c *Cluster) Writes() []k8stesting.Action {
	return slices.DeleteFunc(c.Actions(), func(a k8stesting.Action) bool {
		return slices.Contains([]string{"get", "list", "watch"}, a.GetVerb())
	})
}

// Reset forgets the requests received so far (the objects stay).
func (c *Cluster) Reset() {
	c.KubeFake.ClearActions()
	c.DynamicFake.ClearActions()
}

// DryRunOf is the dryRun option a write carried (nil for other requests).
func DryRunOf(a k8stesting.Action) []string {
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
	return nil
}

// Describe is a request in one line, for failure messages:
// "create configmaps kube-system/coredns dryRun=[All]".
func Describe(a k8stesting.Action) string {
	name := ""
	if n, ok := a.(interface{ GetName() string }); ok {
		name = n.GetName()
	}
	if o, ok := a.(interface{ GetObject() runtime.Object }); ok && name == "" {
		if m, ok := o.GetObject().(metav1.Object); ok {
			name = m.GetName()
		}
	}
	resource := a.GetResource().Resource
	if sub := a.GetSubresource(); sub != "" {
		resource += "/" + sub
	}
	s := fmt.Sprintf("%s %s %s/%s", a.GetVerb(), resource, a.GetNamespace(), name)
	if d := DryRunOf(a); len(d) > 0 {
		s += fmt.Sprintf(" dryRun=%v", d)
	}
	return s
}

// DescribeAll is Describe of each request, one a line.
func DescribeAll(as []k8stesting.Action) string {
	var b strings.Builder
	for _, a := range as {
		b.WriteString(Describe(a) + "\n")
	}
	return b.String()
}

// kubernetesKind is the kind of a resource of Kubernetes itself, which
// the typed and the dynamic client share.
func kubernetesKind(gvr schema.GroupVersionResource) (schema.GroupVersionKind, bool) {
	kind, ok := kinds[gvr]
	gvk := gvr.GroupVersion().WithKind(kind)
	return gvk, ok && kubescheme.Scheme.Recognizes(gvk)
}
