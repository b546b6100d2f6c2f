package plugin

import (
	"net/netip"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

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
			dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds)
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
