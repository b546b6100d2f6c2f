package export

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

// maxVIPProbes bounds the candidates tried for one entry.
const maxVIPProbes = 256

// warnNoClaims is printed once per cluster without the VIPClaim CRD.
const warnNoClaims = "VIPClaims are not served here (mesh-webhook is not installed), so VIP uniqueness is checked only against the ServiceEntries that exist now; install mesh-webhook to make it atomic"

// vipAllocator hands out VIPs in one target cluster. With VIPClaims served
// it claims through pkg/vip, the same claims mesh-webhook checks, so both
// agree on who holds an address. Without them it avoids every address an
// existing ServiceEntry of the cluster uses (best effort: a concurrent
// writer is not seen). The existing claims and entries are read once per
// cluster, so a run costs one request per new claim, not a scan per service.
type vipAllocator struct {
	claims *vip.Claims // nil: best effort
	space  rules.VIPSpace
	dryRun bool

	mu      sync.Mutex
	holders map[netip.Addr]vip.Owner // claims mode: known claims
	used    map[netip.Addr]string    // addresses of entries, by namespace/name
}

func newVIPAllocator(ctx context.Context, dyn dynamic.Interface, entries map[string]*unstructured.Unstructured, dryRun bool) (*vipAllocator, error) {
	space := rules.DefaultVIPSpace()
	a := &vipAllocator{space: space, dryRun: dryRun, holders: map[netip.Addr]vip.Owner{}, used: map[netip.Addr]string{}}
	for key, se := range entries {
		for _, s := range builders.Addresses(se) {
			if addr, err := netip.ParseAddr(s); err == nil {
				a.used[addr] = key
			}
		}
	}
	list, err := dyn.Resource(vip.GVR).List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return a, nil
	case err != nil:
		return nil, fmt.Errorf("list VIPClaims: %w", err)
	}
	a.claims = vip.NewClaims(dyn, space)
	for i := range list.Items {
		addr, err := netip.ParseAddr(list.Items[i].GetName())
		if err != nil {
			continue
		}
		ns, _, _ := unstructured.NestedString(list.Items[i].Object, "spec", "serviceEntry", "namespace")
		name, _, _ := unstructured.NestedString(list.Items[i].Object, "spec", "serviceEntry", "name")
		a.holders[addr] = vip.Owner{Namespace: ns, Name: name}
	}
	return a, nil
}

// usesClaims reports whether VIPs are claimed through VIPClaims.
func (a *vipAllocator) usesClaims() bool { return a.claims != nil }

// forEntry returns the VIP of the entry o: the one it already has (claimed
// if it is not yet), else a new one. claimed says the claim was created by
// this call, not merely found held by o (a concurrent export of the same
// Service may have made it): only then may the caller release it when the
// entry is not written.
func (a *vipAllocator) forEntry(ctx context.Context, o vip.Owner, existing []string) (addr netip.Addr, claimed bool, err error) {
	for _, s := range existing {
		cur, perr := netip.ParseAddr(s)
		if perr != nil || !a.space.Contains(cur) {
			continue
		}
		if a.claims == nil {
			return cur, false, nil
		}
		a.mu.Lock()
		h, known := a.holders[cur]
		a.mu.Unlock()
		if known && h.Same(o) {
			return cur, false, nil
		}
		created, err := a.claims.Acquire(ctx, cur, o, a.dryRun)
		if err != nil {
			return netip.Addr{}, false, fmt.Errorf("keep VIP %s of ServiceEntry %s: %w", cur, o, err)
		}
		a.remember(cur, o)
		return cur, created, nil
	}
	probes := 0
	for cand := range a.space.Candidates(o.Host) {
		if probes >= maxVIPProbes {
			break
		}
		a.mu.Lock()
		h, held := a.holders[cand]
		user, inUse := a.used[cand]
		a.mu.Unlock()
		if held && !h.Same(o) || inUse && user != o.String() {
			continue
		}
		if a.claims == nil {
			a.remember(cand, o)
			return cand, false, nil
		}
		probes++
		created, err := a.claims.Acquire(ctx, cand, o, a.dryRun)
		var taken *vip.TakenError
		switch {
		case err == nil:
			a.remember(cand, o)
			return cand, created, nil
		case errors.As(err, &taken):
			a.mu.Lock()
			a.holders[cand] = taken.Holder
			a.mu.Unlock()
			continue
		default:
			return netip.Addr{}, false, err
		}
	}
	return netip.Addr{}, false, fmt.Errorf("no free VIP for ServiceEntry %s in %s after %d candidates; delete unused ServiceEntries", o, a.space, probes)
}

func (a *vipAllocator) remember(addr netip.Addr, o vip.Owner) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.used[addr] = o.String()
	if a.claims != nil {
		a.holders[addr] = o
	}
}

// release frees a claim this run created for an entry it then failed to
// write.
func (a *vipAllocator) release(ctx context.Context, addr netip.Addr, o vip.Owner) error {
	if a.claims == nil {
		return nil
	}
	a.mu.Lock()
	delete(a.holders, addr)
	delete(a.used, addr)
	a.mu.Unlock()
	return a.claims.Release(ctx, addr, o)
}
