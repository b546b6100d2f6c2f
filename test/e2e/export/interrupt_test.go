package export

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

// snapshot is what export may write into a cluster, by object.
func snapshot(t *testing.T, cluster, ns string) []string {
	t.Helper()
	var out []string
	dyn := theLab.Cluster(cluster).Dynamic
	for _, gvr := range []schema.GroupVersionResource{rules.ServiceEntryGVR, rules.DestinationRuleGVR, vip.GVR} {
		ri, opts := dyn.Resource(gvr).Namespace(ns), metav1.ListOptions{}
		if gvr == vip.GVR {
			// Claims are cluster-scoped: those of entries in ns.
			ri, opts = dyn.Resource(gvr).Namespace(""), metav1.ListOptions{LabelSelector: vip.OwnerNamespaceLabel + "=" + ns}
		}
		l, err := ri.List(t.Context(), opts)
		if gvr == vip.GVR && apierrors.IsNotFound(err) {
			continue // no VIPClaims served in this cluster
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range l.Items {
			out = append(out, gvr.Resource+" "+u.GetNamespace()+"/"+u.GetName()+" rv "+u.GetResourceVersion())
		}
	}
	slices.Sort(out)
	return out
}

// Issue 13, item 4: SIGINT during export, sent to the real process while
// the target holds one ServiceEntry create, cancels the run; export undoes
// what it wrote in that target (the held Service's DestinationRule and VIP
// claim, and the other Service it had finished there), says so, and exits
// non-zero. Nothing of the run stays, in the target or the source.
func TestExportInterruptedLeavesTargetAsItWas(t *testing.T) {
	const ns = "slow"
	ctx := t.Context()
	for _, c := range []string{"cluster1", "cluster2"} {
		kube := theLab.Cluster(c).Kube
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	}
	for _, name := range []string{"quick", "slowpoke"} {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name},
				Ports: []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromInt32(8080)}}},
		}
		if _, err := theLab.Cluster("cluster2").Kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	probe := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": rules.IstioAPIVersion, "kind": rules.KindServiceEntry,
		"metadata": map[string]any{"name": "probe", "namespace": ns},
		"spec": map[string]any{"hosts": []any{"probe.example.com"}, "location": "MESH_EXTERNAL", "resolution": "DNS",
			"ports": []any{map[string]any{"name": "http", "number": int64(80), "protocol": "HTTP"}}},
	}}
	hold, err := theLab.Cluster("cluster1").HoldCreate(ctx, lab.HoldOptions{Resource: rules.ServiceEntryGVR, Namespace: ns, Name: "slowpoke-" + ns, Probe: probe})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hold.Stop)
	before, sourceBefore := snapshot(t, "cluster1", ns), snapshot(t, "cluster2", ns)

	proc, err := theLab.StartKubectl("mesh", "export", "quick", "slowpoke", "-n", ns, "--from", "cluster2", "--to", "cluster1")
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.AwaitHold(hold, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	// While slowpoke's entry is held, quick's export finishes.
	for deadline := time.Now().Add(time.Minute); get(t, "cluster1", rules.KindServiceEntry, ns, "quick-"+ns) == nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			proc.Kill()
			t.Fatal("quick's ServiceEntry was never written")
		}
	}
	err = proc.Interrupt(time.Minute)
	hold.Release()
	t.Logf("kubectl mesh export, interrupted:\n%s", proc.Output())
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("interrupted export: %v, want a non-zero exit", err)
	}
	out := proc.Output()
	for _, want := range []string{"interrupted by SIGINT", "serviceentry/quick-slow", "destinationrule/slowpoke-slow-global", "deleted (undone)", "(released)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output does not say %q", want)
		}
	}
	if after := snapshot(t, "cluster1", ns); !slices.Equal(after, before) {
		t.Errorf("target after the interrupted export:\n%v\nwant it as before:\n%v", after, before)
	}
	if after := snapshot(t, "cluster2", ns); !slices.Equal(after, sourceBefore) {
		t.Errorf("source after the interrupted export:\n%v\nwant it as before:\n%v", after, sourceBefore)
	}
}
