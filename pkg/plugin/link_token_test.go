package plugin

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// Issue 13, item 4: link's token binding Secret, made for a new reader
// token, must not stay behind when the token cannot be had (an error, an
// interrupt): no remote secret would hold a token bound to it.
func TestNewTokenFailureRemovesBinding(t *testing.T) {
	kube := fake.NewClientset()
	kube.PrependReactor("create", "serviceaccounts", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "token" {
			return true, nil, errors.New("context canceled")
		}
		return false, nil, nil
	})
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{gvrSecret: "SecretList"})
	var out bytes.Buffer
	r := &linkRun{
		o:    &LinkOptions{TokenExpiry: 24 * time.Hour, DryRun: "none"},
		log:  &stepLog{out: &out},
		from: &cli.Cluster{Context: "c1"}, to: &cli.Cluster{Context: "c2", Kube: kube, Dynamic: dyn},
		toA: applier{dyn: dyn, dryRun: "none"},
	}
	mp := &mesh.MultiPrimaryRecord{Reader: "istio-reader-service-account", TokenBinding: mesh.TokenBindingName("c1")}
	_, _, err := r.newToken(t.Context(), mp)
	if err == nil {
		t.Fatal("newToken with a failing TokenRequest succeeded")
	}
	if _, gerr := kube.CoreV1().Secrets(rules.IstioSystemNamespace).Get(t.Context(), mp.TokenBinding, metav1.GetOptions{}); gerr == nil {
		t.Errorf("the token binding Secret %s stays after the failure %v", mp.TokenBinding, err)
	}
	if !strings.Contains(out.String(), "removed again (undone)") {
		t.Errorf("link does not say it removed the binding:\n%s", out.String())
	}
}
