package export

import (
	"errors"
	"net/netip"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli/clitest"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

func entry(ns, name string, addrs ...string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": rules.IstioAPIVersion, "kind": rules.KindServiceEntry,
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     map[string]any{"hosts": []any{"x.example.com"}},
	}}
	if len(addrs) > 0 {
		a := make([]any, 0, len(addrs))
		for _, s := range addrs {
			a = append(a, s)
		}
		u.Object["spec"].(map[string]any)["addresses"] = a
	}
	return u
}

func TestVIPAllocatorBestEffort(t *testing.T) {
	host := rules.FormatHost("httpbin", "bar", "")
	space := rules.DefaultVIPSpace()
	first := space.Candidate(host)
	dyn := clitest.NewCluster("cluster1").DynamicFake
	dyn.PrependReactor("list", "vipclaims", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(vip.GVR.GroupResource(), "")
	})
	entries := map[string]*unstructured.Unstructured{"foo/squatter": entry("foo", "squatter", first.String())}
	a, err := newVIPAllocator(t.Context(), dyn, entries, false)
	if err != nil {
		t.Fatal(err)
	}
	if a.usesClaims() {
		t.Fatal("usesClaims() = true without the VIPClaim resource")
	}
	o := vip.Owner{Namespace: "bar", Name: "httpbin-bar", Host: host}
	got, claimed, err := a.forEntry(t.Context(), o, nil)
	if err != nil || claimed || got == first || !space.Contains(got) {
		t.Errorf("forEntry() = %s, %v, %v; want a VIP other than the squatter's %s, not claimed", got, claimed, err, first)
	}
	// A second entry of the same host in another namespace gets yet another.
	o2 := vip.Owner{Namespace: "baz", Name: "httpbin-bar", Host: host}
	got2, _, err := a.forEntry(t.Context(), o2, nil)
	if err != nil || got2 == got || got2 == first {
		t.Errorf("second forEntry() = %s, %v; want a third address", got2, err)
	}
	// An entry keeps the address it has.
	keep := netip.MustParseAddr("240.0.0.77")
	if got, _, err := a.forEntry(t.Context(), o, []string{keep.String()}); err != nil || got != keep {
		t.Errorf("forEntry(existing %s) = %s, %v", keep, got, err)
	}
}

func TestVIPAllocatorClaims(t *testing.T) {
	host := rules.FormatHost("httpbin", "bar", "")
	space := rules.DefaultVIPSpace()
	first := space.Candidate(host)
	dyn := clitest.NewCluster("cluster1").DynamicFake
	// Another entry holds the first candidate.
	other := vip.Owner{Namespace: "foo", Name: "other", Host: "other.foo.global"}
	c := vip.NewClaims(dyn, space)
	if err := c.Claim(t.Context(), first, other, false); err != nil {
		t.Fatal(err)
	}
	a, err := newVIPAllocator(t.Context(), dyn, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if !a.usesClaims() {
		t.Fatal("usesClaims() = false with VIPClaims served")
	}
	o := vip.Owner{Namespace: "bar", Name: "httpbin-bar", Host: host}
	got, claimed, err := a.forEntry(t.Context(), o, nil)
	if err != nil || !claimed || got == first {
		t.Fatalf("forEntry() = %s, %v, %v; want a new claimed VIP other than %s", got, claimed, err, first)
	}
	h, found, err := c.Holder(t.Context(), got)
	if err != nil || !found || !h.Same(o) {
		t.Errorf("holder of %s = %v, %v, %v; want %s", got, h, found, err, o)
	}
	// Keeping an address another entry holds is an error naming the holder.
	_, _, err = a.forEntry(t.Context(), o, []string{first.String()})
	var taken *vip.TakenError
	if !errors.As(err, &taken) {
		t.Errorf("forEntry(existing %s held by %s) error = %v, want a TakenError", first, other, err)
	}
	if err := a.release(t.Context(), got, o); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := c.Holder(t.Context(), got); found {
		t.Errorf("release left the claim of %s", got)
	}
}

// Issue 13, item 5: a concurrent export of the same Service claims the VIP
// after this run read the claims; Claim succeeds either way, but this run
// did not create the claim, so its undo must not release it.
func TestVIPAllocatorReleasesOnlyItsOwnClaims(t *testing.T) {
	host := rules.FormatHost("httpbin", "bar", "")
	space := rules.DefaultVIPSpace()
	o := vip.Owner{Namespace: "bar", Name: "httpbin-bar", Host: host}
	tests := map[string]struct {
		existing []string // the entry's addresses
		taken    netip.Addr
	}{
		"new VIP, claimed meanwhile by the other run":     {taken: space.Candidate(host)},
		"entry's VIP, claimed meanwhile by the other run": {existing: []string{"240.0.0.77"}, taken: netip.MustParseAddr("240.0.0.77")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dyn := clitest.NewCluster("cluster1").DynamicFake
			a, err := newVIPAllocator(t.Context(), dyn, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			other := vip.NewClaims(dyn, space)
			if err := other.Claim(t.Context(), tc.taken, o, false); err != nil {
				t.Fatal(err)
			}
			got, claimed, err := a.forEntry(t.Context(), o, tc.existing)
			if err != nil || got != tc.taken {
				t.Fatalf("forEntry = %s, %v; want %s", got, err, tc.taken)
			}
			if claimed {
				t.Errorf("forEntry says this run claimed %s, which the other run holds", got)
			}
			// What export's undo does with the answer.
			if claimed {
				if err := a.release(t.Context(), got, o); err != nil {
					t.Fatal(err)
				}
			}
			if _, found, err := other.Holder(t.Context(), tc.taken); err != nil || !found {
				t.Fatalf("the other run's claim of %s is gone (%v)", tc.taken, err)
			}
		})
	}
}
