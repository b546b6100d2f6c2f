package vip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/metadata"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip/viptest"
)

// replicas plays several webhook replicas (and kubectl-mesh): separate
// Claims, half of them with their own claim cache (metadata, objects, …).
func replicas(t *testing.T, ctx context.Context, space rules.VIPSpace, n int) []*vip.Claims {
	t.Helper()
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*vip.Claims, n)
	for i := range out {
		var opts []vip.Option
		if i%2 == 1 {
			c := vip.NewMetadataCache(meta)
			if i%4 == 3 {
				c = vip.NewCache(dyn)
			}
			go func() { _ = c.Start(ctx) }()
			if err := c.WaitForSync(ctx); err != nil {
				t.Fatal(err)
			}
			opts = append(opts, vip.WithCache(c))
		}
		out[i] = vip.NewClaims(dyn, space, opts...)
	}
	return out
}

func TestConcurrentAllocate(t *testing.T) {
	cleanClaims(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A tiny space so that collisions are real: 25 groups of 20 hosts, each
	// group sharing its first candidate, groups close enough for their probe
	// chains to run into each other.
	space, err := rules.NewVIPSpace("240.0.0.0/20", nil)
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for g := range 25 {
		hosts = append(hosts, viptest.CollidingHosts(space, uint64(100+25*g), fmt.Sprintf("g%d-", g), 20)...)
	}
	claims := replicas(t, ctx, space, 4)
	owners := make([]vip.Owner, len(hosts))
	got := make([]netip.Addr, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, h := range hosts {
		owners[i] = vip.Owner{Namespace: "ns", Name: fmt.Sprintf("se-%03d", i), Host: h}
		wg.Go(func() {
			<-start
			got[i], errs[i] = claims[i%len(claims)].Allocate(ctx, owners[i], false)
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Allocate: %v", err)
	}
	seen := map[netip.Addr]string{}
	for i, a := range got {
		if prev, dup := seen[a]; dup {
			t.Errorf("VIP %s allocated to both %s and %s", a, prev, owners[i])
		}
		seen[a] = owners[i].String()
		if !space.Contains(a) {
			t.Errorf("VIP %s of %s is outside %s", a, owners[i], space)
		}
	}
	// The API server agrees: one claim per owner, held by that owner.
	l, err := dyn.Resource(vip.GVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != len(hosts) {
		t.Errorf("%d claims for %d owners", len(l.Items), len(hosts))
	}
	for i := range l.Items {
		se, _, _ := unstructured.NestedString(l.Items[i].Object, "spec", "serviceEntry", "name")
		a := netip.MustParseAddr(l.Items[i].GetName())
		if seen[a] != "ns/"+se {
			t.Errorf("claim %s is held by ns/%s, but Allocate gave it to %q", a, se, seen[a])
		}
	}
	// Asking again, through any replica, returns the same address.
	for i := range 20 {
		o := owners[i*len(owners)/20]
		again, err := claims[(i+1)%len(claims)].Allocate(ctx, o, false)
		if err != nil || seen[again] != o.String() {
			t.Errorf("second Allocate(%v) = %v, %v; want the address it holds", o, again, err)
		}
	}
}

func TestClaimRace(t *testing.T) {
	cleanClaims(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	space := rules.DefaultVIPSpace()
	claims := replicas(t, ctx, space, 2)
	type result struct {
		owner vip.Owner
		err   error
	}
	results := make([][2]result, 50)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for p := range results {
		addr := netip.AddrFrom4([4]byte{240, 0, 1, byte(p)})
		for side := range 2 {
			o := vip.Owner{Namespace: fmt.Sprintf("team-%d", side), Name: fmt.Sprintf("pair-%d", p), Host: fmt.Sprintf("pair-%d.team-%d.global", p, side)}
			wg.Go(func() {
				<-start
				results[p][side] = result{o, claims[side].Claim(ctx, addr, o, false)}
			})
		}
	}
	close(start)
	wg.Wait()
	for p, r := range results {
		addr := netip.AddrFrom4([4]byte{240, 0, 1, byte(p)})
		winners := 0
		for side, res := range r {
			if res.err == nil {
				winners++
				continue
			}
			other := r[1-side].owner
			te, ok := errors.AsType[*vip.TakenError](res.err)
			if !ok || te.Holder.String() != other.String() || te.Addr != addr {
				t.Errorf("pair %d: %v lost with %v, want a TakenError naming %v", p, res.owner, res.err, other)
			}
		}
		if winners != 1 {
			t.Errorf("pair %d: %d winners for %s, want exactly one", p, winners, addr)
		}
	}
}

func TestDryRunAndRelease(t *testing.T) {
	cleanClaims(t)
	ctx := context.Background()
	c := vip.NewClaims(dyn, rules.DefaultVIPSpace())
	o := vip.Owner{Namespace: "foo", Name: "httpbin-bar", Host: "httpbin.bar.global"}
	dry, err := c.Allocate(ctx, o, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Claim(ctx, netip.MustParseAddr("240.0.2.1"), o, true); err != nil {
		t.Fatal(err)
	}
	if l, err := dyn.Resource(vip.GVR).List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Fatalf("dry runs left claims: %v %v", l, err)
	}
	a, err := c.Allocate(ctx, o, false)
	if err != nil || a != dry {
		t.Fatalf("Allocate = %v, %v; want the dry-run answer %v", a, err, dry)
	}
	// Released and re-taken by someone else: a stale release by o must not
	// free the new holder's claim.
	if err := c.Release(ctx, a, o); err != nil {
		t.Fatal(err)
	}
	other := vip.Owner{Namespace: "bar", Name: "other", Host: "other.bar.global"}
	if err := c.Claim(ctx, a, other, false); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(ctx, a, o); err != nil {
		t.Fatal(err)
	}
	if h, found, err := c.Holder(ctx, a); err != nil || !found || h.String() != other.String() {
		t.Fatalf("after a stale release, holder of %s = %v %v %v; want %v", a, h, found, err, other)
	}
	if err := c.ReleaseAll(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, found, err := c.Holder(ctx, a); err != nil || found {
		t.Fatalf("after ReleaseAll, %s still claimed (%v)", a, err)
	}
}

func TestInstalled(t *testing.T) {
	if installedBefore.ok || installedBefore.err != nil {
		t.Errorf("before the CRD was applied, Installed = %v, %v; want false, nil", installedBefore.ok, installedBefore.err)
	}
	if ok, err := vip.NewClaims(dyn, rules.DefaultVIPSpace()).Installed(context.Background()); !ok || err != nil {
		t.Errorf("with the CRD established, Installed = %v, %v; want true", ok, err)
	}
}

// The CRD's own rules hold on the API server, whoever writes claims.
func TestCRDValidation(t *testing.T) {
	cleanClaims(t)
	ctx := context.Background()
	ri := dyn.Resource(vip.GVR)
	claim := func(name, addr, seNS, seName string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": vip.Group + "/" + vip.Version, "kind": vip.Kind,
			"metadata": map[string]any{"name": name},
			"spec": map[string]any{"address": addr, "host": "a.b.global",
				"serviceEntry": map[string]any{"namespace": seNS, "name": seName}},
		}}
	}
	invalid := func(what string, err error, want string) {
		t.Helper()
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want Invalid mentioning %q", what, err, want)
		}
	}
	_, err := ri.Create(ctx, claim("240.0.3.1", "240.0.3.2", "a", "b"), metav1.CreateOptions{})
	invalid("name differs from address", err, "metadata.name must equal spec.address")
	_, err = ri.Create(ctx, claim("240.0.3.300", "240.0.3.300", "a", "b"), metav1.CreateOptions{})
	invalid("not an address", err, "spec.address")

	u, err := ri.Create(ctx, claim("240.0.3.1", "240.0.3.1", "a", "b"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	moved := u.DeepCopy()
	_ = unstructured.SetNestedField(moved.Object, "c", "spec", "serviceEntry", "name")
	_, err = ri.Update(ctx, moved, metav1.UpdateOptions{})
	invalid("owner changed", err, "immutable")

	withUID := u.DeepCopy()
	_ = unstructured.SetNestedField(withUID.Object, "1111", "spec", "serviceEntry", "uid")
	if u, err = ri.Update(ctx, withUID, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("setting the uid once: %v", err)
	}
	_ = unstructured.SetNestedField(u.Object, "2222", "spec", "serviceEntry", "uid")
	_, err = ri.Update(ctx, u, metav1.UpdateOptions{})
	invalid("uid changed", err, "uid may be set once")

	out, stderr, err := theLab.Kubectl(ctx, nil, "--context", "cluster1", "get", "vipclaims")
	if err != nil {
		t.Fatalf("kubectl get vipclaims: %v: %s", err, stderr)
	}
	if f := strings.Fields(strings.SplitN(out, "\n", 2)[0]); strings.Join(f, " ") != "NAME ADDRESS HOST SERVICEENTRY AGE" {
		t.Errorf("kubectl get vipclaims columns = %q", f)
	}
	if !strings.Contains(out, "240.0.3.1") {
		t.Errorf("kubectl get vipclaims does not list the claim:\n%s", out)
	}
}
