package link

import (
	"context"
	"errors"
	"maps"
	"os/exec"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

// Issue 13, items 2 and 4: SIGINT while link waits on --to (its *.local
// Gateway create is held) ends link non-zero, naming the signal and the
// record that says what it changed (the Corefile of --from); unlink then
// restores the Corefile exactly.
func TestLinkInterruptedThenUnlinkRestores(t *testing.T) {
	trust(t, "cluster1", "cluster2")
	ctx := t.Context()
	gws := theLab.Cluster("cluster2").Dynamic.Resource(rules.GatewayGVR).Namespace("istio-system")
	// An earlier test's passthrough Gateway would spare link the write.
	if err := gws.Delete(ctx, "cross-network-gateway", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	before := configMap(t, "cluster1", "kube-system", "coredns")
	restoreConfigMapAfter(t, "cluster1", "kube-system", "coredns")
	probe := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
		"metadata": map[string]any{"name": "probe", "namespace": "istio-system"},
		"spec":     map[string]any{"selector": map[string]any{"istio": "ingressgateway"}},
	}}
	hold, err := theLab.Cluster("cluster2").HoldCreate(ctx, lab.HoldOptions{Resource: rules.GatewayGVR, Namespace: "istio-system", Name: "cross-network-gateway", Probe: probe})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hold.Stop)

	proc, err := theLab.StartKubectl("mesh", "link", "--from", "cluster1", "--to", "cluster2")
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.AwaitHold(hold, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	err = proc.Interrupt(time.Minute)
	hold.Release()
	out := proc.Output()
	t.Logf("kubectl mesh link, interrupted:\n%s", out)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("interrupted link: %v, want a non-zero exit", err)
	}
	for _, want := range []string{"interrupted by SIGINT", "mesh-system/mesh-link-cluster2", "kubectl mesh unlink --from cluster1 --to cluster2"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output does not say %q", want)
		}
	}
	if got := configMap(t, "cluster1", "kube-system", "coredns"); maps.Equal(got.Data, before.Data) {
		t.Fatal("link did not change the Corefile before it was interrupted; the test needs a change to undo")
	}

	t.Cleanup(func() {
		_, _, _ = theLab.Kubectl(context.Background(), nil, "mesh", "unlink", "--from", "cluster1", "--to", "cluster2")
	})
	kubectlMesh(t, "unlink", "--from", "cluster1", "--to", "cluster2")
	if got := configMap(t, "cluster1", "kube-system", "coredns"); !maps.Equal(got.Data, before.Data) {
		t.Fatalf("unlink after the interrupted link did not restore the Corefile:\n%q\nwant\n%q", got.Data, before.Data)
	}
}
