package export

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

var validatingWebhookGVR = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"}

// holdingWebhook is an admission webhook that holds the create of one
// ServiceEntry until the test lets it go, then refuses it, and admits the
// others of its namespace: a deterministic "slow target" to interrupt
// export in.
type holdingWebhook struct {
	hold    string        // name of the ServiceEntry held
	arrived chan struct{} // closed when its create arrives
	release chan struct{} // closed by the test
	once    sync.Once
}

func startHoldingWebhook(t *testing.T, cluster, namespace, hold string) *holdingWebhook {
	t.Helper()
	h := &holdingWebhook{hold: hold, arrived: make(chan struct{}), release: make(chan struct{})}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(h.serve))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-h.release:
		default:
			close(h.release)
		}
	})
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	name := "hold-serviceentries-" + namespace
	cfg := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
		"metadata": map[string]any{"name": name},
		"webhooks": []any{map[string]any{
			"name":                    "hold.serviceentries.e2e.kubectl-mesh.io",
			"admissionReviewVersions": []any{"v1"},
			"sideEffects":             "None",
			"failurePolicy":           "Fail",
			"timeoutSeconds":          int64(30),
			"clientConfig":            map[string]any{"url": srv.URL + "/hold", "caBundle": caBundle},
			"namespaceSelector":       map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": namespace}},
			"rules": []any{map[string]any{
				"apiGroups": []any{"networking.istio.io"}, "apiVersions": []any{"*"},
				"operations": []any{"CREATE"}, "resources": []any{"serviceentries"},
			}},
		}},
	}}
	dyn := theLab.Cluster(cluster).Dynamic
	if _, err := dyn.Resource(validatingWebhookGVR).Create(t.Context(), cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = dyn.Resource(validatingWebhookGVR).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	// The configuration takes effect asynchronously: wait until a server
	// dry run of a create is held.
	probe := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": builders.APIVersion, "kind": builders.KindServiceEntry,
		"metadata": map[string]any{"name": "probe", "namespace": namespace},
		"spec": map[string]any{"hosts": []any{"probe.example.com"}, "location": "MESH_EXTERNAL", "resolution": "DNS",
			"ports": []any{map[string]any{"name": "http", "number": int64(80), "protocol": "HTTP"}}},
	}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := dyn.Resource(builders.ServiceEntryGVR).Namespace(namespace).Create(t.Context(), probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), "probe let through") {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("the holding webhook never took effect (last answer: %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (h *holdingWebhook) serve(w http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	switch {
	case review.Request.DryRun != nil && *review.Request.DryRun:
		resp.Allowed, resp.Result = false, &metav1.Status{Code: http.StatusForbidden, Message: "probe let through"}
	case review.Request.Name == h.hold:
		h.once.Do(func() { close(h.arrived) })
		select {
		case <-h.release:
		case <-r.Context().Done():
		}
		resp.Allowed, resp.Result = false, &metav1.Status{Code: http.StatusForbidden, Message: "held by the e2e test, then refused"}
	}
	review.Response = resp
	review.Request = nil
	_ = json.NewEncoder(w).Encode(&review)
}

// snapshot is what export may write into a cluster, by object.
func snapshot(t *testing.T, cluster, ns string) []string {
	t.Helper()
	var out []string
	dyn := theLab.Cluster(cluster).Dynamic
	for _, gvr := range []schema.GroupVersionResource{builders.ServiceEntryGVR, builders.DestinationRuleGVR, vip.GVR} {
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
	hold := startHoldingWebhook(t, "cluster1", ns, "slowpoke-"+ns)
	before, sourceBefore := snapshot(t, "cluster1", ns), snapshot(t, "cluster2", ns)

	kubectl, err := lab.Binary("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	env, err := theLab.Env()
	if err != nil {
		t.Fatal(err)
	}
	// kubectl execs the plugin in its own process, so the signal reaches it.
	cmd := exec.Command(kubectl, "mesh", "export", "quick", "slowpoke", "-n", ns, "--from", "cluster2", "--to", "cluster1")
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-hold.arrived:
	case err := <-exited:
		t.Fatalf("export ended before its ServiceEntry reached the target: %v\n%s%s", err, stdout.String(), stderr.String())
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("the ServiceEntry create never reached the holding webhook\n%s%s", stdout.String(), stderr.String())
	}
	// While slowpoke's entry is held, quick's export finishes.
	for deadline := time.Now().Add(time.Minute); get(t, "cluster1", builders.KindServiceEntry, ns, "quick-"+ns) == nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("quick's ServiceEntry was never written\n%s%s", stdout.String(), stderr.String())
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-exited:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("export did not end within a minute of SIGINT\n%s%s", stdout.String(), stderr.String())
	}
	close(hold.release)
	t.Logf("kubectl mesh export, interrupted:\n%s%s", stdout.String(), stderr.String())
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("interrupted export: %v, want a non-zero exit", err)
	}
	out := stdout.String() + stderr.String()
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
