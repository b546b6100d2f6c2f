// Package viptest installs the VIPClaim CRD in test clusters and crafts
// hosts whose VIP candidates collide, for the end-to-end tests and
// benchmarks of package vip.
package viptest

import (
	"context"
	"fmt"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRD creates the VIPClaim CRD (vip.CRDYAML) unless it exists and
// waits until it is established and VIPClaims are served.
func InstallCRD(ctx context.Context, client dynamic.Interface) error {
	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(vip.CRDYAML(), &crd.Object); err != nil {
		return fmt.Errorf("parse the VIPClaim CRD: %w", err)
	}
	if _, err := client.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create the VIPClaim CRD: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if established(ctx, client, crd.GetName()) {
			if _, err := client.Resource(vip.GVR).List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("VIPClaim CRD not established: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func established(ctx context.Context, client dynamic.Interface, name string) bool {
	u, err := client.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// CollidingHosts returns n distinct `.global` hosts whose first VIP
// candidate in space is the address at index start, so that allocating for
// them makes every allocator probe the same chain of addresses.
func CollidingHosts(space rules.VIPSpace, start uint64, prefix string, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		h := prefix + strconv.Itoa(i) + ".ns.global"
		if rules.HashIndex(h, space.Size()) == start%space.Size() {
			out = append(out, h)
		}
	}
	return out
}
