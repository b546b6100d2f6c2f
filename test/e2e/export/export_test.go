// Package export checks `kubectl mesh export` and `unexport` end to end:
// the real kubectl discovers the freshly built plugin and runs it against a
// lab of three API servers (an IP gateway, a host-name gateway and a
// NodePort gateway). mesh-webhook runs for cluster1, so every object export
// writes there passes its admission (and VIPs are claimed through its
// VIPClaims); cluster3 has no webhook and no VIPClaims.
package export

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

var theLab *lab.Lab

func TestMain(m *testing.M) {
	os.Exit(lab.RunTests(m, lab.Options{Clusters: lab.DefaultClusters}, func(ctx context.Context, l *lab.Lab, binDir string) (func(), error) {
		theLab = l
		wh, err := installWebhook(ctx, l, binDir)
		if err != nil {
			return nil, err
		}
		return func() {
			if err := wh.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}, nil
	}))
}

// installWebhook runs mesh-webhook for cluster1, allowing cluster3's
// gateway node port as the README says a NodePort source needs: in the
// mesh-webhook-config ConfigMap, which the ValidatingAdmissionPolicy shipped
// beside the webhook follows too.
func installWebhook(ctx context.Context, l *lab.Lab, binDir string) (*lab.Webhook, error) {
	svc, err := l.Cluster("cluster3").Kube.CoreV1().Services("istio-system").Get(ctx, "istio-ingressgateway", metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	var np int32
	for _, p := range svc.Spec.Ports {
		if p.Port == rules.GatewayPort {
			np = p.NodePort
		}
	}
	ports := fmt.Sprintf("%d,%d", rules.GatewayPort, np)
	return l.Cluster("cluster1").InstallWebhook(ctx, lab.WebhookOptions{
		BinDir: binDir,
		// The webhook and the ValidatingAdmissionPolicy both read it.
		Config: map[string]string{"allowedGatewayPorts": ports},
		Log:    os.Stderr,
	})
}

// mesh runs `kubectl mesh ARGS` through the real kubectl's plugin discovery.
func mesh(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	stdout, stderr, err = theLab.Kubectl(t.Context(), nil, append([]string{"mesh"}, args...)...)
	t.Logf("kubectl mesh %s\n%s%s", strings.Join(args, " "), stdout, stderr)
	return stdout, stderr, err
}

// cleanupMesh runs `kubectl mesh ARGS` when the test ends, after its
// context is done, failing the test if it fails (what it leaves behind
// would break the tests after it).
func cleanupMesh(t *testing.T, args ...string) {
	t.Helper()
	t.Cleanup(func() {
		if out, stderr, err := theLab.Kubectl(context.Background(), nil, append([]string{"mesh"}, args...)...); err != nil {
			t.Errorf("cleanup: kubectl mesh %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
	})
}

func mustMesh(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := mesh(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return stdout, stderr
}

func get(t *testing.T, cluster string, kind string, ns, name string) *unstructured.Unstructured {
	t.Helper()
	gvr := rules.ServiceEntryGVR
	if kind == rules.KindDestinationRule {
		gvr = rules.DestinationRuleGVR
	}
	u, err := theLab.Cluster(cluster).Dynamic.Resource(gvr).Namespace(ns).Get(t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func mustGet(t *testing.T, cluster, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := get(t, cluster, kind, ns, name)
	if u == nil {
		t.Fatalf("%s: %s %s/%s not found", cluster, kind, ns, name)
	}
	return u
}

func mustBeGone(t *testing.T, cluster, kind, ns, name string) {
	t.Helper()
	if u := get(t, cluster, kind, ns, name); u != nil {
		t.Errorf("%s: %s %s/%s still exists: %v", cluster, kind, ns, name, u.Object["spec"])
	}
}

func spec(u *unstructured.Unstructured) map[string]any {
	s, _, _ := unstructured.NestedMap(u.Object, "spec")
	return s
}

// subsets maps subset name → its labels.
func subsets(dr *unstructured.Unstructured) map[string]map[string]string {
	raw, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
	out := map[string]map[string]string{}
	for _, r := range raw {
		m := r.(map[string]any)
		labels, _, _ := unstructured.NestedStringMap(m, "labels")
		out[m["name"].(string)] = labels
	}
	return out
}

// endpoints maps the cluster label → endpoint.
func endpoints(se *unstructured.Unstructured) map[string]map[string]any {
	raw, _, _ := unstructured.NestedSlice(se.Object, "spec", "endpoints")
	out := map[string]map[string]any{}
	for _, r := range raw {
		m := r.(map[string]any)
		c, _, _ := unstructured.NestedString(m, "labels", rules.ClusterLabel)
		out[c] = m
	}
	return out
}

func vipOf(t *testing.T, se *unstructured.Unstructured) netip.Addr {
	t.Helper()
	a := builders.Addresses(se)
	if len(a) != 1 {
		t.Fatalf("%s addresses = %v, want one VIP", se.GetName(), a)
	}
	addr, err := rules.ParseVIP(a[0], rules.DefaultVIPSpace())
	if err != nil {
		t.Fatalf("%s VIP: %v", se.GetName(), err)
	}
	return addr
}

func claimOf(t *testing.T, cluster string, addr netip.Addr) *unstructured.Unstructured {
	t.Helper()
	u, err := theLab.Cluster(cluster).Dynamic.Resource(vip.GVR).Get(t.Context(), addr.String(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func seedSpec(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "test", "seeds", name))
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	return obj["spec"].(map[string]any)
}

// normalizeSpec drops what differs by design between an exported entry and
// the seed (VIP, gateway address) and reads protocols in any case, as Istio
// does; it works on a JSON round trip so numbers compare equal.
func normalizeSpec(t *testing.T, s map[string]any) any {
	t.Helper()
	var out map[string]any
	b, _ := yaml.Marshal(s)
	if err := yaml.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	delete(out, "addresses")
	for _, ep := range out["endpoints"].([]any) {
		delete(ep.(map[string]any), "address")
		delete(ep.(map[string]any), "locality") // the seed's clusters have none; see TestExportEndpointLocality
	}
	for _, p := range out["ports"].([]any) {
		p.(map[string]any)["protocol"] = strings.ToUpper(p.(map[string]any)["protocol"].(string))
	}
	return out
}

func TestExportHttpbinLikeTheSeed(t *testing.T) {
	args := []string{"export", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster1"}
	out, _ := mustMesh(t, args...)
	if !strings.Contains(out, "created") {
		t.Errorf("first export output lacks 'created':\n%s", out)
	}
	se := mustGet(t, "cluster1", rules.KindServiceEntry, "bar", "httpbin-bar")
	if got, want := normalizeSpec(t, spec(se)), normalizeSpec(t, seedSpec(t, "httpbin-bar.yaml")); !reflect.DeepEqual(got, want) {
		t.Errorf("exported spec differs from the seed's (apart from VIP and gateway):\n got %v\nwant %v", got, want)
	}
	if ep := endpoints(se)["cluster2"]; ep == nil || ep["address"] != lab.IngressHostnameCluster2 {
		t.Errorf("endpoint of cluster2 = %v, want address %s (cluster2's gateway host name)", ep, lab.IngressHostnameCluster2)
	}
	if se.GetLabels()[rules.ManagedByLabel] != rules.ManagedByValue || se.GetAnnotations()[builders.AnnotationSourceClusters] != "cluster2" {
		t.Errorf("entry metadata = %v / %v, want managed-by kubectl-mesh and source cluster2", se.GetLabels(), se.GetAnnotations())
	}
	addr := vipOf(t, se)
	dr := mustGet(t, "cluster1", rules.KindDestinationRule, "bar", "httpbin-bar-global")
	if want := map[string]map[string]string{"v1": {"cluster": "cluster2"}}; !reflect.DeepEqual(subsets(dr), want) {
		t.Errorf(".global subsets = %v, want %v", subsets(dr), want)
	}
	wantSNI := map[string]string{
		"/8000":   "outbound_.8000_._.httpbin.bar.svc.cluster.local",
		"v1/8000": "outbound_.8000_.v1_.httpbin.bar.svc.cluster.local",
	}
	if got := snis(t, dr); !reflect.DeepEqual(got, wantSNI) {
		t.Errorf(".global rule SNIs = %v, want %v (the source's own names, which its *.local passthrough routes)", got, wantSNI)
	}
	local := mustGet(t, "cluster2", rules.KindDestinationRule, "bar", "httpbin-bar-local")
	if want := map[string]map[string]string{"v1": {"version": "v1"}}; !reflect.DeepEqual(subsets(local), want) {
		t.Errorf("cluster2 local subsets = %v, want %v", subsets(local), want)
	}
	if got := local.GetAnnotations()[builders.AnnotationExportedTo]; got != "cluster1/bar" {
		t.Errorf("cluster2 local rule exported-to = %q, want cluster1/bar", got)
	}

	// Re-run: nothing changes, the VIP stays.
	rv := se.GetResourceVersion()
	out, _ = mustMesh(t, args...)
	if strings.Contains(out, "created") || strings.Contains(out, "configured") || !strings.Contains(out, "unchanged") {
		t.Errorf("second export should report only unchanged objects:\n%s", out)
	}
	se2 := mustGet(t, "cluster1", rules.KindServiceEntry, "bar", "httpbin-bar")
	if se2.GetResourceVersion() != rv || vipOf(t, se2) != addr {
		t.Errorf("re-run changed the entry: resourceVersion %s → %s, VIP %s → %v", rv, se2.GetResourceVersion(), addr, builders.Addresses(se2))
	}

	mustMesh(t, "unexport", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster1")
	mustBeGone(t, "cluster1", rules.KindServiceEntry, "bar", "httpbin-bar")
	mustBeGone(t, "cluster1", rules.KindDestinationRule, "bar", "httpbin-bar-global")
	mustBeGone(t, "cluster2", rules.KindDestinationRule, "bar", "httpbin-bar-local")
}

// snis reads the SNI of every port-level tls of a DestinationRule, by
// "<subset>/<port>" ("" for the rule's own traffic policy); each must be
// ISTIO_MUTUAL.
func snis(t *testing.T, dr *unstructured.Unstructured) map[string]string {
	t.Helper()
	out := map[string]string{}
	read := func(subset string, policy map[string]any) {
		pls, _, _ := unstructured.NestedSlice(policy, "portLevelSettings")
		for _, raw := range pls {
			pl, _ := raw.(map[string]any)
			port, _, _ := unstructured.NestedInt64(pl, "port", "number")
			if mode, _, _ := unstructured.NestedString(pl, "tls", "mode"); mode != "ISTIO_MUTUAL" {
				t.Errorf("%s: subset %q port %d has tls.mode %q, want ISTIO_MUTUAL", dr.GetName(), subset, port, mode)
			}
			out[fmt.Sprintf("%s/%d", subset, port)], _, _ = unstructured.NestedString(pl, "tls", "sni")
		}
	}
	top, _, _ := unstructured.NestedMap(dr.Object, "spec", "trafficPolicy")
	read("", top)
	subsets, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
	for _, raw := range subsets {
		s, _ := raw.(map[string]any)
		policy, _, _ := unstructured.NestedMap(s, "trafficPolicy")
		name, _ := s["name"].(string)
		read(name, policy)
	}
	return out
}

func nodePort(t *testing.T, cluster string) int64 {
	t.Helper()
	svc, err := theLab.Cluster(cluster).Kube.CoreV1().Services("istio-system").Get(t.Context(), "istio-ingressgateway", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range svc.Spec.Ports {
		if p.Port == rules.GatewayPort {
			return int64(p.NodePort)
		}
	}
	t.Fatalf("%s: no port 15443 on the gateway", cluster)
	return 0
}

func TestExportHelloworldFromTwoClusters(t *testing.T) {
	from2 := []string{"export", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster1,cluster3"}
	mustMesh(t, from2...)
	dr := mustGet(t, "cluster1", rules.KindDestinationRule, "hello", "helloworld-hello-global")
	want := map[string]map[string]string{"v2": {"cluster": "cluster2"}, "v3": {"cluster": "cluster2"}}
	if !reflect.DeepEqual(subsets(dr), want) {
		t.Errorf("cluster1 .global subsets = %v, want %v (endpoint labels, never pod labels)", subsets(dr), want)
	}
	if got := snis(t, dr)["v3/5000"]; got != "outbound_.5000_.v3_.helloworld.hello.svc.cluster.local" {
		t.Errorf("cluster1 .global subset v3 SNI = %q", got)
	}
	local := mustGet(t, "cluster2", rules.KindDestinationRule, "hello", "helloworld-hello-local")
	if want := map[string]map[string]string{"v2": {"version": "v2"}, "v3": {"version": "v3"}}; !reflect.DeepEqual(subsets(local), want) {
		t.Errorf("cluster2 local subsets = %v, want %v", subsets(local), want)
	}
	se1 := mustGet(t, "cluster1", rules.KindServiceEntry, "hello", "helloworld-hello")
	vip1 := vipOf(t, se1)

	// cluster1 serves VIPClaims: the VIP is claimed by the entry.
	se3 := mustGet(t, "cluster3", rules.KindServiceEntry, "hello", "helloworld-hello")
	claim := claimOf(t, "cluster1", vip1)
	if claim == nil {
		t.Fatalf("cluster1: no VIPClaim for %s", vip1)
	}
	if ns, _, _ := unstructured.NestedString(claim.Object, "spec", "serviceEntry", "namespace"); ns != "hello" {
		t.Errorf("claim %s names namespace %q, want hello", claim.GetName(), ns)
	}

	// A second source, in NodePort mode, adds an endpoint to cluster1's entry.
	from3 := []string{"export", "helloworld", "-n", "hello", "--from", "cluster3", "--to", "cluster1"}
	_, stderr := mustMesh(t, from3...)
	if !strings.Contains(stderr, "NodePort") {
		t.Errorf("NodePort export should warn that the webhook must allow the node port; stderr:\n%s", stderr)
	}
	se1 = mustGet(t, "cluster1", rules.KindServiceEntry, "hello", "helloworld-hello")
	eps := endpoints(se1)
	if len(eps) != 2 || eps["cluster2"]["address"] != lab.IngressHostnameCluster2 {
		t.Fatalf("cluster1 endpoints = %v, want cluster2's kept and cluster3's added", eps)
	}
	np := nodePort(t, "cluster3")
	if p, _, _ := unstructured.NestedInt64(eps["cluster3"], "ports", "http"); p != np || eps["cluster3"]["address"] != lab.ProfileOf(2).NodeExternal[0] {
		t.Errorf("cluster3 endpoint = %v, want %s with port %d", eps["cluster3"], lab.ProfileOf(2).NodeExternal[0], np)
	}
	if vipOf(t, se1) != vip1 {
		t.Errorf("adding a source changed the VIP %s → %s", vip1, vipOf(t, se1))
	}
	dr = mustGet(t, "cluster1", rules.KindDestinationRule, "hello", "helloworld-hello-global")
	want["v4"] = map[string]string{"cluster": "cluster3"}
	if !reflect.DeepEqual(subsets(dr), want) {
		t.Errorf("cluster1 .global subsets = %v, want %v", subsets(dr), want)
	}

	// Both again: unchanged.
	for _, args := range [][]string{from2, from3} {
		out, _ := mustMesh(t, args...)
		if strings.Contains(out, "created") || strings.Contains(out, "configured") {
			t.Errorf("re-run changed something:\n%s", out)
		}
	}

	// Unexport cluster3: cluster2's endpoint and subsets stay.
	mustMesh(t, "unexport", "helloworld", "-n", "hello", "--from", "cluster3", "--to", "cluster1")
	se1 = mustGet(t, "cluster1", rules.KindServiceEntry, "hello", "helloworld-hello")
	if eps := endpoints(se1); len(eps) != 1 || eps["cluster2"] == nil {
		t.Errorf("after unexport from cluster3, endpoints = %v, want only cluster2's", eps)
	}
	delete(want, "v4")
	if got := subsets(mustGet(t, "cluster1", rules.KindDestinationRule, "hello", "helloworld-hello-global")); !reflect.DeepEqual(got, want) {
		t.Errorf("after unexport from cluster3, subsets = %v, want %v", got, want)
	}

	// Unexport cluster2 from both: everything goes, claims too.
	_ = vipOf(t, se3)
	mustMesh(t, "unexport", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster1,cluster3")
	for _, c := range []string{"cluster1", "cluster3"} {
		mustBeGone(t, c, rules.KindServiceEntry, "hello", "helloworld-hello")
		mustBeGone(t, c, rules.KindDestinationRule, "hello", "helloworld-hello-global")
	}
	mustBeGone(t, "cluster2", rules.KindDestinationRule, "hello", "helloworld-hello-local")
	if c := claimOf(t, "cluster1", vip1); c != nil {
		t.Errorf("cluster1: VIPClaim %s survived unexport", vip1)
	}
}

// TestConcurrentSources exports one Service from two clusters at the same
// time: optimistic concurrency keeps both endpoints.
func TestConcurrentSources(t *testing.T) {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, from := range []string{"cluster2", "cluster3"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = theLab.Kubectl(t.Context(), nil, "mesh", "export", "helloworld", "-n", "hello", "--from", from, "--to", "cluster1")
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	se := mustGet(t, "cluster1", rules.KindServiceEntry, "hello", "helloworld-hello")
	if eps := endpoints(se); len(eps) != 2 {
		t.Errorf("after two concurrent exports, endpoints = %v, want cluster2's and cluster3's", eps)
	}
	dr := mustGet(t, "cluster1", rules.KindDestinationRule, "hello", "helloworld-hello-global")
	if got := slices.Sorted(mapsKeys(subsets(dr))); !slices.Equal(got, []string{"v2", "v3", "v4"}) {
		t.Errorf("after two concurrent exports, subsets = %v, want v2 v3 v4", got)
	}
	mustMesh(t, "unexport", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster1")
	mustMesh(t, "unexport", "helloworld", "-n", "hello", "--from", "cluster3", "--to", "cluster1")
	mustBeGone(t, "cluster1", rules.KindServiceEntry, "hello", "helloworld-hello")
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestPartialFailure: an unknown context, a target without the namespace
// and a missing Service each fail on their own; the rest completes, and the
// failed target holds nothing half-written.
func TestPartialFailure(t *testing.T) {
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-x"}}
	if _, err := theLab.Cluster("cluster1").Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	_, stderr, err := mesh(t, "export", "httpbin", "no-such-svc", "-n", "bar", "--from", "cluster2", "--to", "cluster1,cluster9,cluster3", "--target-namespace", "team-x")
	if err == nil {
		t.Fatal("export with failing targets exited 0")
	}
	for _, want := range []string{
		`context "cluster9" is not in the kubeconfig`,
		"cluster3: namespace team-x not found",
		"--create-namespace",
		"service bar/no-such-svc not found in cluster cluster2",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	mustGet(t, "cluster1", rules.KindServiceEntry, "team-x", "httpbin-bar")
	mustGet(t, "cluster1", rules.KindDestinationRule, "team-x", "httpbin-bar-global")
	mustBeGone(t, "cluster3", rules.KindServiceEntry, "team-x", "httpbin-bar")
	mustBeGone(t, "cluster3", rules.KindDestinationRule, "team-x", "httpbin-bar-global")

	// --create-namespace completes cluster3 on a re-run.
	mustMesh(t, "export", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster1,cluster3", "--target-namespace", "team-x", "--create-namespace")
	mustGet(t, "cluster3", rules.KindServiceEntry, "team-x", "httpbin-bar")
	mustMesh(t, "unexport", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster1,cluster3", "--target-namespace", "team-x")
	mustBeGone(t, "cluster1", rules.KindServiceEntry, "team-x", "httpbin-bar")
	mustBeGone(t, "cluster3", rules.KindServiceEntry, "team-x", "httpbin-bar")
}

// TestUserOwnedObjectsUntouched: objects kubectl-mesh did not write are
// neither changed nor deleted.
func TestUserOwnedObjectsUntouched(t *testing.T) {
	ctx := t.Context()
	userDR := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": rules.IstioAPIVersion, "kind": rules.KindDestinationRule,
		"metadata": map[string]any{"name": "helloworld", "namespace": "hello"},
		"spec": map[string]any{"host": "helloworld", "subsets": []any{
			map[string]any{"name": "v2", "labels": map[string]any{"version": "v2"}},
		}},
	}}
	c2 := theLab.Cluster("cluster2").Dynamic.Resource(rules.DestinationRuleGVR).Namespace("hello")
	created, err := c2.Create(ctx, userDR, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Delete(context.Background(), "helloworld", metav1.DeleteOptions{}) //nolint:errcheck // cleanup
	userSE := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": rules.IstioAPIVersion, "kind": rules.KindServiceEntry,
		"metadata": map[string]any{"name": "httpbin-bar", "namespace": "bar"},
		"spec": map[string]any{"hosts": []any{"httpbin.bar.global"}, "location": "MESH_INTERNAL", "resolution": "DNS",
			"ports": []any{map[string]any{"name": "http", "number": int64(8000), "protocol": "HTTP"}}},
	}}
	c3 := theLab.Cluster("cluster3").Dynamic.Resource(rules.ServiceEntryGVR).Namespace("bar")
	seCreated, err := c3.Create(ctx, userSE, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Delete(context.Background(), "httpbin-bar", metav1.DeleteOptions{}) //nolint:errcheck // cleanup

	_, stderr := mustMesh(t, "export", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster1")
	if !strings.Contains(stderr, "hello/helloworld") || !strings.Contains(stderr, "v2, v3") || !strings.Contains(stderr, "missing now: v3") {
		t.Errorf("export should say the user's DestinationRule hello/helloworld must define v2, v3 (missing v3); stderr:\n%s", stderr)
	}
	mustBeGone(t, "cluster2", rules.KindDestinationRule, "hello", "helloworld-hello-local")
	if got := mustGet(t, "cluster2", rules.KindDestinationRule, "hello", "helloworld"); got.GetResourceVersion() != created.GetResourceVersion() {
		t.Errorf("the user's DestinationRule was changed")
	}

	_, stderr, err = mesh(t, "export", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster3")
	if err == nil || !strings.Contains(stderr, "not managed by kubectl-mesh") {
		t.Errorf("export over a user's ServiceEntry: err = %v, stderr:\n%s\nwant a failure saying it is not managed by kubectl-mesh", err, stderr)
	}
	mustMesh(t, "unexport", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster3")
	if got := mustGet(t, "cluster3", rules.KindServiceEntry, "bar", "httpbin-bar"); got.GetResourceVersion() != seCreated.GetResourceVersion() {
		t.Errorf("the user's ServiceEntry was changed by export/unexport")
	}
	mustBeGone(t, "cluster3", rules.KindDestinationRule, "bar", "httpbin-bar-global")
	mustMesh(t, "unexport", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster1")
}

// TestVIPUniqueWithoutClaims: cluster3 serves no VIPClaims; export avoids
// the address an existing entry already uses.
func TestVIPUniqueWithoutClaims(t *testing.T) {
	ctx := t.Context()
	taken := rules.DefaultVIPSpace().Candidate(rules.FormatHost("httpbin", "bar", ""))
	squatter := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": rules.IstioAPIVersion, "kind": rules.KindServiceEntry,
		"metadata": map[string]any{"name": "squatter", "namespace": "foo"},
		"spec": map[string]any{"hosts": []any{"squatter.example.com"}, "addresses": []any{taken.String()}, "location": "MESH_EXTERNAL", "resolution": "DNS",
			"ports": []any{map[string]any{"name": "http", "number": int64(80), "protocol": "HTTP"}}},
	}}
	c3 := theLab.Cluster("cluster3").Dynamic.Resource(rules.ServiceEntryGVR).Namespace("foo")
	if _, err := c3.Create(ctx, squatter, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer c3.Delete(context.Background(), "squatter", metav1.DeleteOptions{}) //nolint:errcheck // cleanup
	// The seed's entry for the same host, in namespace foo.
	if _, _, err := theLab.Kubectl(ctx, nil, "--context", "cluster3", "apply", "-f", filepath.Join(repoRoot(t), "test", "seeds", "httpbin-bar.yaml")); err != nil {
		t.Fatal(err)
	}
	// One host, one entry: export refuses, as mesh-webhook does, and
	// writes nothing.
	if _, stderr, err := mesh(t, "export", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster3"); err == nil ||
		!strings.Contains(stderr, "httpbin.bar.global is already held by ServiceEntry foo/httpbin-bar") {
		t.Fatalf("export over the seed's entry of the same host: err = %v; want a refusal naming foo/httpbin-bar:\n%s", err, stderr)
	}
	mustBeGone(t, "cluster3", rules.KindServiceEntry, "bar", "httpbin-bar")
	if _, _, err := theLab.Kubectl(ctx, nil, "--context", "cluster3", "delete", "serviceentry", "-n", "foo", "httpbin-bar"); err != nil {
		t.Fatal(err)
	}
	_, stderr := mustMesh(t, "export", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster3")
	if !strings.Contains(stderr, "cluster3: VIPClaims are not served") {
		t.Errorf("export into a cluster without VIPClaims should warn; stderr:\n%s", stderr)
	}
	se := mustGet(t, "cluster3", rules.KindServiceEntry, "bar", "httpbin-bar")
	if got := vipOf(t, se); got == taken {
		t.Errorf("export reused VIP %s of an existing entry", taken)
	}
	mustMesh(t, "unexport", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster3")
}

// The egress variant routes nowhere on current Istio (the egress gateway
// passes the TLS on untouched, so one SNI would have to name a service of
// both clusters): export refuses it, saying why, and writes nothing.
func TestViaEgressRefused(t *testing.T) {
	_, stderr, err := mesh(t, "export", "sleep", "-n", "foo", "--from", "cluster1", "--to", "cluster2", "--via-egress")
	if err == nil || !strings.Contains(stderr, "--via-egress is refused") || !strings.Contains(stderr, "routes nowhere") {
		t.Fatalf("export --via-egress: err = %v, want a refusal that says why:\n%s", err, stderr)
	}
	mustBeGone(t, "cluster2", rules.KindServiceEntry, "foo", "sleep-foo")
	mustBeGone(t, "cluster2", rules.KindDestinationRule, "foo", "sleep-foo-global")
}

func TestDryRun(t *testing.T) {
	out, _ := mustMesh(t, "export", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster1", "--dry-run=client", "-o", "yaml")
	var list struct {
		Items []map[string]any `json:"items"`
	}
	if err := yaml.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, it := range list.Items {
		kinds = append(kinds, it["kind"].(string))
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, []string{"DestinationRule", "DestinationRule", "ServiceEntry"}) {
		t.Errorf("-o yaml printed kinds %v, want the entry, its rule and the source's rule", kinds)
	}
	out, _ = mustMesh(t, "export", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster1,cluster3", "--dry-run=server")
	if !strings.Contains(out, "created (server dry run)") {
		t.Errorf("server dry run output:\n%s", out)
	}
	for _, c := range []string{"cluster1", "cluster3"} {
		mustBeGone(t, c, rules.KindServiceEntry, "bar", "httpbin-bar")
		mustBeGone(t, c, rules.KindDestinationRule, "bar", "httpbin-bar-global")
	}
	mustBeGone(t, "cluster2", rules.KindDestinationRule, "bar", "httpbin-bar-local")
	claims, err := theLab.Cluster("cluster1").Dynamic.Resource(vip.GVR).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(claims.Items) != 0 {
		t.Errorf("server dry run left %d VIPClaims in cluster1", len(claims.Items))
	}

	out, _ = mustMesh(t, "export", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster1", "-o", "name")
	if !bytes.Contains([]byte(out), []byte("serviceentry.networking.istio.io/httpbin-bar")) {
		t.Errorf("-o name output:\n%s", out)
	}
	mustMesh(t, "unexport", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster1")
}

// TestSelectorAndAll: -l picks Services by label; unexport --all removes
// every entry exported from the namespace.
func TestSelectorAndAll(t *testing.T) {
	mustMesh(t, "export", "-l", "service=httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster3")
	mustGet(t, "cluster3", rules.KindServiceEntry, "bar", "httpbin-bar")
	_, stderr, err := mesh(t, "export", "-l", "service=nothing", "-n", "bar", "--from", "cluster2", "--to", "cluster3")
	if err == nil || !strings.Contains(stderr, "no Service matches -l service=nothing") {
		t.Errorf("export -l matching nothing: err = %v, stderr:\n%s", err, stderr)
	}
	mustMesh(t, "unexport", "--all", "-n", "bar", "--from", "cluster2", "--to", "cluster3")
	mustBeGone(t, "cluster3", rules.KindServiceEntry, "bar", "httpbin-bar")
	mustBeGone(t, "cluster3", rules.KindDestinationRule, "bar", "httpbin-bar-global")
	mustBeGone(t, "cluster2", rules.KindDestinationRule, "bar", "httpbin-bar-local")
}

// A .global DestinationRule the user owns is left alone, and export says
// which SNIs it must carry for requests to land.
func TestExportLeavesUserGlobalRule(t *testing.T) {
	drs := theLab.Cluster("cluster3").Dynamic.Resource(rules.DestinationRuleGVR).Namespace("bar")
	user := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
		"metadata": map[string]any{"name": "my-httpbin", "namespace": "bar"},
		"spec":     map[string]any{"host": "httpbin.bar.global", "trafficPolicy": map[string]any{"tls": map[string]any{"mode": "ISTIO_MUTUAL"}}},
	}}
	created, err := drs.Create(t.Context(), user, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = drs.Delete(context.Background(), "my-httpbin", metav1.DeleteOptions{}) })
	_, stderr := mustMesh(t, "export", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster3")
	cleanupMesh(t, "unexport", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster3")
	for _, want := range []string{"bar/my-httpbin", "left alone", "port 8000: tls.sni outbound_.8000_._.httpbin.bar.svc.cluster.local", "subset v1 port 8000: tls.sni outbound_.8000_.v1_.httpbin.bar.svc.cluster.local"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("export output lacks %q:\n%s", want, stderr)
		}
	}
	mustGet(t, "cluster3", rules.KindServiceEntry, "bar", "httpbin-bar")
	mustBeGone(t, "cluster3", rules.KindDestinationRule, "bar", "httpbin-bar-global")
	if got := mustGet(t, "cluster3", rules.KindDestinationRule, "bar", "my-httpbin"); got.GetResourceVersion() != created.GetResourceVersion() {
		t.Error("export changed the user's DestinationRule")
	}
}

// The sources of one host share one cluster DNS domain, which the SNI of
// its DestinationRule names: a second source with another domain is
// refused, naming both, and the entry keeps its first source.
func TestExportRefusesMixedClusterDomains(t *testing.T) {
	mustMesh(t, "export", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster3")
	cleanupMesh(t, "unexport", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster3")
	_, stderr, err := mesh(t, "export", "helloworld", "-n", "hello", "--from", "cluster1", "--to", "cluster3", "--source-cluster-domain", "corp.internal")
	if err == nil || !strings.Contains(stderr, "cluster domain cluster.local") || !strings.Contains(stderr, "corp.internal") {
		t.Fatalf("mixed cluster domains: err = %v, want a refusal naming both domains:\n%s", err, stderr)
	}
	se := mustGet(t, "cluster3", rules.KindServiceEntry, "hello", "helloworld-hello")
	if got := se.GetAnnotations()[builders.AnnotationSourceClusters]; got != "cluster2" {
		t.Errorf("entry sources after the refusal = %q, want cluster2 only", got)
	}
}

// Every endpoint carries its source's locality, from the topology labels of
// the source's nodes (the lab's cluster2 nodes share the region and not the
// zone) or --locality, so that Istio's locality load balancing tells the
// sources apart.
func TestExportEndpointLocality(t *testing.T) {
	mustMesh(t, "export", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster3")
	cleanupMesh(t, "unexport", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster3")
	_, stderr := mustMesh(t, "export", "helloworld", "-n", "hello", "--from", "cluster1", "--to", "cluster3", "--locality", "eu-west-1/eu-west-1a")
	cleanupMesh(t, "unexport", "helloworld", "-n", "hello", "--from", "cluster1", "--to", "cluster3")
	if strings.Contains(stderr, "no locality") {
		t.Errorf("export with --locality warns about a missing locality:\n%s", stderr)
	}
	eps := endpoints(mustGet(t, "cluster3", rules.KindServiceEntry, "hello", "helloworld-hello"))
	if got := eps["cluster2"]["locality"]; got != "region-cluster2" {
		t.Errorf("cluster2 endpoint locality = %v, want region-cluster2 (its nodes' common region; their zones differ)", got)
	}
	if got := eps["cluster1"]["locality"]; got != "eu-west-1/eu-west-1a" {
		t.Errorf("cluster1 endpoint locality = %v, want the --locality given", got)
	}
	_, stderr, err := mesh(t, "export", "helloworld", "-n", "hello", "--from", "cluster1", "--to", "cluster3", "--locality", "eu/*")
	if err == nil || !strings.Contains(stderr, "--locality") {
		t.Errorf("a bad --locality: err = %v, want an error naming the flag:\n%s", err, stderr)
	}
}
