package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	kubescheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

// fakeMesh is a kubeconfig of three contexts whose clusters are fakes,
// handed to every command through the factory. The fakes answer as an API
// server does where the commands rely on it: a write marked dryRun=All is
// answered and not stored, and a server-side apply creates or replaces.
type fakeMesh struct {
	kubeconfig string
	certsDir   string // --dir of the certs commands, when set
	kube       map[string]*fake.Clientset
	dyn        map[string]*dynamicfake.FakeDynamicClient
}

var fakeListKinds = map[schema.GroupVersionResource]string{
	rules.ServiceEntryGVR:                        "ServiceEntryList",
	rules.DestinationRuleGVR:                     "DestinationRuleList",
	rules.GatewayGVR:                             "GatewayList",
	rules.VirtualServiceGVR:                      "VirtualServiceList",
	vip.GVR:                                      "VIPClaimList",
	{Version: "v1", Resource: "configmaps"}:      "ConfigMapList",
	{Version: "v1", Resource: "namespaces"}:      "NamespaceList",
	{Version: "v1", Resource: "secrets"}:         "SecretList",
	{Version: "v1", Resource: "services"}:        "ServiceList",
	{Version: "v1", Resource: "serviceaccounts"}: "ServiceAccountList",
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}:        "ClusterRoleList",
	{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}: "ClusterRoleBindingList",
}

var istioResources = map[string]schema.GroupVersionResource{
	rules.KindServiceEntry: rules.ServiceEntryGVR, rules.KindDestinationRule: rules.DestinationRuleGVR,
	rules.KindGateway: rules.GatewayGVR, rules.KindVirtualService: rules.VirtualServiceGVR,
}

// fakeCluster describes one cluster of a fakeMesh: typed objects and Istio
// objects as YAML documents.
type fakeClusterState struct {
	kube  []runtime.Object
	istio []string
}

func newFakeMesh(t *testing.T, state map[string]fakeClusterState) *fakeMesh {
	t.Helper()
	m := &fakeMesh{kube: map[string]*fake.Clientset{}, dyn: map[string]*dynamicfake.FakeDynamicClient{}}
	var contexts, clusters strings.Builder
	for _, name := range []string{"cluster1", "cluster2", "cluster3"} {
		fmt.Fprintf(&clusters, "- name: %s\n  cluster: {server: \"https://%s.example:6443\"}\n", name, name)
		fmt.Fprintf(&contexts, "- name: %s\n  context: {cluster: %s, user: u}\n", name, name)
		kube := fake.NewClientset(state[name].kube...)
		dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), fakeListKinds)
		for _, d := range state[name].istio {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(d), &u.Object); err != nil {
				t.Fatalf("%v\n%s", err, d)
			}
			if err := dyn.Tracker().Create(istioResources[u.GetKind()], u, u.GetNamespace()); err != nil {
				t.Fatal(err)
			}
		}
		// Reactors run last prepended first: dry runs are answered before
		// anything is stored, and Kubernetes' own kinds are one store for
		// the typed and the dynamic client, as on a real API server.
		applyAsReplace(dyn)
		shareKubernetesKinds(dyn, kube)
		answerDryRuns(&kube.Fake, kube.Tracker())
		answerDryRuns(&dyn.Fake, dyn.Tracker())
		m.kube[name], m.dyn[name] = kube, dyn
	}
	m.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	cfg := "apiVersion: v1\nkind: Config\nclusters:\n" + clusters.String() + "users:\n- name: u\n  user: {token: t}\ncontexts:\n" + contexts.String() + "current-context: cluster1\n"
	if err := os.WriteFile(m.kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return m
}

// run runs `kubectl mesh ARGS` on the fake clusters and returns stdout and
// stderr.
func (m *fakeMesh) run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cf := cli.NewConfigFlags()
	f := cli.NewFactory(cf)
	f.ClusterFor = func(context string) (*cli.Cluster, error) {
		kube, ok := m.kube[context]
		if !ok {
			return nil, fmt.Errorf("no fake cluster %q", context)
		}
		return &cli.Cluster{Context: context, Config: &rest.Config{Host: "https://" + context + ".example:6443"}, Kube: kube, Dynamic: m.dyn[context]}, nil
	}
	var out, errOut bytes.Buffer
	root := newCmdMesh(cf, f, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	if m.certsDir != "" && len(args) > 0 && args[0] == "certs" {
		args = append(args, "--dir", m.certsDir)
	}
	root.SetArgs(append([]string{"--kubeconfig", m.kubeconfig}, args...))
	err := root.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

// writes are the requests the commands sent that change something, per
// cluster, since the last reset.
func (m *fakeMesh) writes() []k8stesting.Action {
	var all []k8stesting.Action
	for _, name := range []string{"cluster1", "cluster2", "cluster3"} {
		for _, a := range append(m.kube[name].Actions(), m.dyn[name].Actions()...) {
			switch a.GetVerb() {
			case "create", "update", "patch", "delete", "delete-collection":
				all = append(all, a)
			}
		}
	}
	return all
}

func (m *fakeMesh) reset() {
	for name := range m.kube {
		m.kube[name].ClearActions()
		m.dyn[name].ClearActions()
	}
}

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
	return nil
}

func describe(a k8stesting.Action) string {
	name := ""
	if n, ok := a.(interface{ GetName() string }); ok {
		name = n.GetName()
	}
	return fmt.Sprintf("%s %s %s/%s dryRun=%v", a.GetVerb(), a.GetResource().Resource, a.GetNamespace(), name, dryRunOf(a))
}

// answerDryRuns answers writes marked dryRun=All with what they would
// store, and stores nothing, as the API server does.
func answerDryRuns(f *k8stesting.Fake, tracker k8stesting.ObjectTracker) {
	f.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if len(dryRunOf(a)) == 0 {
			return false, nil, nil
		}
		switch a := a.(type) {
		case k8stesting.CreateActionImpl:
			return true, a.GetObject(), nil
		case k8stesting.UpdateActionImpl:
			return true, a.GetObject(), nil
		case k8stesting.PatchActionImpl:
			if a.GetPatchType() == types.ApplyPatchType {
				u := &unstructured.Unstructured{}
				return true, u, json.Unmarshal(a.GetPatch(), &u.Object)
			}
			obj, err := tracker.Get(a.GetResource(), a.GetNamespace(), a.GetName())
			return true, obj, err
		}
		return true, nil, nil
	})
}

// applyAsReplace makes a dynamic fake answer a server-side apply as a
// create or a full replace (the fake's tracker has no field management).
func applyAsReplace(dyn *dynamicfake.FakeDynamicClient) {
	dyn.PrependReactor("patch", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p, ok := a.(k8stesting.PatchActionImpl)
		if !ok || p.GetPatchType() != types.ApplyPatchType {
			return false, nil, nil
		}
		u := &unstructured.Unstructured{}
		if err := json.Unmarshal(p.GetPatch(), &u.Object); err != nil {
			return true, nil, err
		}
		u.SetResourceVersion("")
		old, err := dyn.Tracker().Get(p.GetResource(), p.GetNamespace(), p.GetName())
		if err != nil {
			return true, u, dyn.Tracker().Create(p.GetResource(), u, p.GetNamespace())
		}
		u.SetUID(old.(metav1.Object).GetUID())
		return true, u, dyn.Tracker().Update(p.GetResource(), u, p.GetNamespace())
	})
}

var _ = context.Background

// meshWithHTTPBin: cluster2 serves bar/httpbin (v1 Pods), every cluster
// has istio-system and an ingress gateway with a load balancer address.
func meshWithHTTPBin(t *testing.T) *fakeMesh {
	state := map[string]fakeClusterState{}
	for i, name := range []string{"cluster1", "cluster2", "cluster3"} {
		s := fakeClusterState{kube: append(gatewayObjects(fmt.Sprintf("203.0.113.%d", i+1)), dnsObjects(fmt.Sprintf("10.96.%d.10", i+1))...)}
		s.kube = append(s.kube, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bar"}})
		if name == "cluster2" {
			s.kube = append(s.kube, httpbinService(), httpbinPod("v1"))
		}
		state[name] = s
	}
	return newFakeMesh(t, state)
}

// TestEveryCommandDryRunAndOutput runs every command of kubectl mesh on
// fake clusters in each --dry-run strategy and each -o format: a client
// dry run sends no write, a server dry run sends every write marked
// dryRun=All, none writes for real; -o gives the same formats with the
// same meaning everywhere.
func TestEveryCommandDryRunAndOutput(t *testing.T) {
	tests := map[string]commandCase{
		"version": {args: []string{"version"}, mesh: meshWithHTTPBin},
		"status":  {args: []string{"status", "--contexts", "cluster1,cluster2"}, mesh: meshWithHTTPBin},
		"export":  {args: []string{"export", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster1"}, writes: true, objects: true, mesh: meshWithHTTPBin},
		"unexport": {args: []string{"unexport", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster1"}, writes: true, objects: true, emptyOK: true, mesh: meshWithHTTPBin,
			before: [][]string{{"export", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster1"}}},
		"route":            {args: []string{"route", "httpbin", "-n", "bar", "--context", "cluster2", "--to", "v1"}, writes: true, objects: true, mesh: meshWithHTTPBin},
		"route --failover": {args: []string{"route", "httpbin", "-n", "bar", "--context", "cluster2", "--host", "local", "--failover", "eu-west=eu-north"}, writes: true, objects: true, mesh: meshWithHTTPBin},
		"certs install":    {args: []string{"certs", "install", "--contexts", "cluster1,cluster2"}, writes: true, objects: true, mesh: meshWithHTTPBin, certs: true},
		"link": {args: []string{"link", "--from", "cluster1", "--to", "cluster2"}, writes: true, objects: true, mesh: meshWithHTTPBin, certs: true,
			before: [][]string{{"certs", "install", "--contexts", "cluster1,cluster2"}}},
		"unlink": {args: []string{"unlink", "--from", "cluster1", "--to", "cluster2"}, writes: true, objects: true, emptyOK: true, mesh: meshWithHTTPBin, certs: true,
			before: [][]string{{"certs", "install", "--contexts", "cluster1,cluster2"}, {"link", "--from", "cluster1", "--to", "cluster2"}}},
		"certs root":         {args: []string{"certs", "root", "--key-algorithm", "ecdsa", "--force"}, mesh: meshWithHTTPBin, certs: true},
		"certs intermediate": {args: []string{"certs", "intermediate", "cluster1", "--force"}, mesh: meshWithHTTPBin, certs: true},
		"certs rotate":       {args: []string{"certs", "rotate", "cluster1"}, mesh: meshWithHTTPBin, certs: true},
		"certs verify": {args: []string{"certs", "verify", "--contexts", "cluster1"}, mesh: meshWithHTTPBin, certs: true,
			before: [][]string{{"certs", "install", "--contexts", "cluster1"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { tc.check(t) })
	}
}

type commandCase struct {
	args    []string // the command, without --dry-run and -o
	writes  bool     // it writes, so it takes --dry-run
	objects bool     // -o prints API objects (else a report)
	emptyOK bool     // -o may print an empty List
	mesh    func(t *testing.T) *fakeMesh
	before  [][]string // commands that set the clusters up
	certs   bool       // it needs --dir with a root and intermediates for every cluster
}

func (c commandCase) setUp(t *testing.T) *fakeMesh {
	t.Helper()
	m := c.mesh(t)
	if c.certs {
		m.certsDir = filepath.Join(t.TempDir(), "certs")
		for _, args := range [][]string{{"certs", "root", "--key-algorithm", "ecdsa"}, {"certs", "intermediate", "cluster1", "cluster2", "cluster3"}} {
			if out, errOut, err := m.run(t, args...); err != nil {
				t.Fatalf("set-up %v: %v\n%s%s", args, err, out, errOut)
			}
		}
	}
	for _, args := range c.before {
		if out, errOut, err := m.run(t, args...); err != nil {
			t.Fatalf("set-up %v: %v\n%s%s", args, err, out, errOut)
		}
	}
	m.reset()
	return m
}

func (c commandCase) check(t *testing.T) {
	if !c.writes {
		m := c.setUp(t)
		if _, _, err := m.run(t, append(c.args, "--dry-run=client")...); err == nil || !strings.Contains(err.Error(), "unknown flag") {
			t.Errorf("%v --dry-run: %v, want an unknown flag (it writes nothing)", c.args, err)
		}
		if out, errOut, err := m.run(t, c.args...); err != nil || out == "" {
			t.Errorf("%v: %v\n%s%s", c.args, err, out, errOut)
		}
		if w := m.writes(); len(w) != 0 {
			t.Errorf("%v wrote: %v", c.args, w)
		}
	}
	for _, dry := range []cli.DryRun{cli.DryRunNone, cli.DryRunClient, cli.DryRunServer} {
		if !c.writes {
			break
		}
		t.Run("dry-run="+dry.String(), func(t *testing.T) { c.checkDryRun(t, dry) })
	}
	formats := []string{"yaml", "json", "name", "jsonpath={.kind}"}
	for _, format := range formats {
		t.Run("o="+format, func(t *testing.T) { c.checkOutput(t, format) })
	}
}

func (c commandCase) checkDryRun(t *testing.T, dry cli.DryRun) {
	m := c.setUp(t)
	out, errOut, err := m.run(t, append(c.args, "--dry-run="+dry.String())...)
	if err != nil {
		t.Fatalf("%v --dry-run=%s: %v\n%s%s", c.args, dry, err, out, errOut)
	}
	if dry != cli.DryRunNone && !strings.Contains(out+errOut, dry.Suffix()) {
		t.Errorf("--dry-run=%s: the output does not say%q:\n%s%s", dry, dry.Suffix(), out, errOut)
	}
	writes := m.writes()
	if dry == cli.DryRunClient && len(writes) != 0 {
		t.Fatalf("--dry-run=client sent writes:\n%s", describeAll(writes))
	}
	if dry != cli.DryRunClient && len(writes) == 0 {
		t.Fatalf("--dry-run=%s sent no write", dry)
	}
	for _, w := range writes {
		if marked := len(dryRunOf(w)) == 1 && dryRunOf(w)[0] == metav1.DryRunAll; marked != (dry == cli.DryRunServer) {
			t.Errorf("--dry-run=%s sent %s", dry, describe(w))
		}
	}
}

func (c commandCase) checkOutput(t *testing.T, format string) {
	m := c.setUp(t)
	args := append(append([]string{}, c.args...), "-o", format)
	if c.writes {
		args = append(args, "--dry-run=client")
	}
	out, errOut, err := m.run(t, args...)
	if !c.objects && (format == "name" || strings.HasPrefix(format, "jsonpath={.kind}")) {
		if format == "name" && (err == nil || !strings.Contains(err.Error(), "report")) {
			t.Errorf("%v: %v, want -o name refused: this command prints a report", args, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%v: %v\n%s%s", args, err, out, errOut)
	}
	switch format {
	case "json", "yaml":
		// YAML is a superset of JSON: one decoder reads both.
		var v map[string]any
		if err := yaml.Unmarshal([]byte(out), &v); err != nil || len(v) == 0 || (format == "json" && !json.Valid([]byte(out))) {
			t.Fatalf("%v printed no %s (%v):\n%s", args, format, err, out)
		}
		if c.objects && (v["kind"] != "List" || (!c.emptyOK && len(v["items"].([]any)) == 0)) {
			t.Fatalf("%v: want one List of the objects:\n%s", args, out)
		}
	case "name":
		lines := strings.Fields(out)
		if len(lines) == 0 && !c.emptyOK {
			t.Fatalf("%v printed no names", args)
		}
		for _, l := range lines {
			if !strings.Contains(l, "/") {
				t.Errorf("%v: %q is not KIND/NAME", args, l)
			}
		}
	default:
		if out != "List" {
			t.Errorf("%v printed %q, want List", args, out)
		}
	}
}

func describeAll(as []k8stesting.Action) string {
	var b strings.Builder
	for _, a := range as {
		b.WriteString(describe(a) + "\n")
	}
	return b.String()
}

// gatewayObjects are istio-system and its ingress gateway, reachable at
// lbIP on 15443.
func gatewayObjects(lbIP string) []runtime.Object {
	return []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rules.IstioSystemNamespace}},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "istio-ingressgateway", Namespace: rules.IstioSystemNamespace, Labels: map[string]string{"istio": "ingressgateway"}},
			Spec: corev1.ServiceSpec{
				Type:     corev1.ServiceTypeLoadBalancer,
				Selector: map[string]string{"istio": "ingressgateway"},
				Ports:    []corev1.ServicePort{{Name: "tls", Port: 15443, TargetPort: intstr.FromInt32(15443), NodePort: 31443}},
			},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: lbIP}}}},
		},
	}
}

func httpbinPod(version string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "httpbin-" + version, Namespace: "bar", Labels: map[string]string{"app": "httpbin", "version": version}}}
}

// corefile is a cluster DNS configuration as kubeadm writes it.
const corefile = `.:53 {
    errors
    health
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
}
`

// dnsObjects are CoreDNS's ConfigMap and istiocoredns at ip.
func dnsObjects(ip string) []runtime.Object {
	return []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"}, Data: map[string]string{"Corefile": corefile}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "istiocoredns", Namespace: rules.IstioSystemNamespace}, Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}}},
	}
}

// kubernetesKinds are the kinds of Kubernetes itself the commands reach
// through the dynamic client, by resource.
var kubernetesKinds = map[string]string{
	"configmaps": "ConfigMap", "namespaces": "Namespace", "secrets": "Secret", "services": "Service",
	"serviceaccounts": "ServiceAccount", "clusterroles": "ClusterRole", "clusterrolebindings": "ClusterRoleBinding",
}

// shareKubernetesKinds serves the dynamic client's requests for
// Kubernetes' own kinds from the typed fake's store, converting on the way.
func shareKubernetesKinds(dyn *dynamicfake.FakeDynamicClient, kube *fake.Clientset) {
	store := kube.Tracker()
	dyn.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		gvr := a.GetResource()
		kind, ok := kubernetesKinds[gvr.Resource]
		if !ok || (gvr.Group != "" && gvr.Group != "rbac.authorization.k8s.io") {
			return false, nil, nil
		}
		gvk := gvr.GroupVersion().WithKind(kind)
		ns := a.GetNamespace()
		switch a := a.(type) {
		case k8stesting.GetActionImpl:
			obj, err := store.Get(gvr, ns, a.GetName())
			return true, toDynamic(obj, gvk), err
		case k8stesting.ListActionImpl:
			obj, err := store.List(gvr, gvk, ns)
			if err != nil {
				return true, nil, err
			}
			list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": gvk.GroupVersion().String(), "kind": kind + "List"}}
			items, _ := meta.ExtractList(obj)
			for _, item := range items {
				list.Items = append(list.Items, *toDynamic(item, gvk))
			}
			return true, list, nil
		case k8stesting.CreateActionImpl:
			typed, err := toTyped(a.GetObject(), gvk)
			if err == nil {
				err = store.Create(gvr, typed, ns)
			}
			return true, a.GetObject(), err
		case k8stesting.UpdateActionImpl:
			typed, err := toTyped(a.GetObject(), gvk)
			if err == nil {
				err = store.Update(gvr, typed, ns)
			}
			return true, a.GetObject(), err
		case k8stesting.PatchActionImpl:
			if a.GetPatchType() != types.ApplyPatchType {
				return false, nil, nil
			}
			u := &unstructured.Unstructured{}
			if err := json.Unmarshal(a.GetPatch(), &u.Object); err != nil {
				return true, nil, err
			}
			typed, err := toTyped(u, gvk)
			if err != nil {
				return true, nil, err
			}
			if _, err := store.Get(gvr, ns, a.GetName()); err != nil {
				return true, u, store.Create(gvr, typed, ns)
			}
			return true, u, store.Update(gvr, typed, ns)
		case k8stesting.DeleteActionImpl:
			return true, nil, store.Delete(gvr, ns, a.GetName())
		}
		return false, nil, nil
	})
}

func toDynamic(obj runtime.Object, gvk schema.GroupVersionKind) *unstructured.Unstructured {
	if obj == nil {
		return nil
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		panic(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	return u
}

func toTyped(obj runtime.Object, gvk schema.GroupVersionKind) (runtime.Object, error) {
	typed, err := kubescheme.Scheme.New(gvk)
	if err != nil {
		return nil, err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	return typed, runtime.DefaultUnstructuredConverter.FromUnstructured(m, typed)
}
