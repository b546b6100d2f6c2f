package vip

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

func newFake(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{GVR: Kind + "List", rules.ServiceEntryGVR: "ServiceEntryList"}, objs...)
}

func mustSpace(t *testing.T, rng string) rules.VIPSpace {
	t.Helper()
	s, err := rules.NewVIPSpace(rng, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claimObj is a claim created just now: reusing it needs no touch.
func claimObj(addr string, o Owner) *unstructured.Unstructured {
	u := newClaim(netip.MustParseAddr(addr), o, rules.ManagedByValue)
	u.SetUID(types.UID("uid-" + addr))
	u.SetResourceVersion("1")
	u.SetCreationTimestamp(metav1.Now())
	return u
}

// writes counts the create/update/patch/delete actions a fake saw.
func writes(f *dynamicfake.FakeDynamicClient) (n int) {
	for _, a := range f.Actions() {
		switch a.GetVerb() {
		case "create", "update", "patch", "delete", "delete-collection":
			n++
		}
	}
	return n
}

func holders(t *testing.T, f *dynamicfake.FakeDynamicClient) map[string]string {
	t.Helper()
	l, err := f.Resource(GVR).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for i := range l.Items {
		_, o, err := claimOf(&l.Items[i])
		if err != nil {
			t.Fatal(err)
		}
		m[l.Items[i].GetName()] = o.String() + " " + o.Host
	}
	return m
}

var (
	foo = Owner{Namespace: "foo", Name: "httpbin-bar", Host: "httpbin.bar.global"}
	bar = Owner{Namespace: "bar", Name: "other", Host: "other.bar.global"}
)

func TestAllocate(t *testing.T) {
	space := mustSpace(t, "240.0.0.0/30")
	first := space.Candidate(foo.Host)
	second := space.Next(first)
	tests := map[string]struct {
		existing   []runtime.Object
		owner      Owner
		dryRun     bool
		maxProbes  int
		want       netip.Addr
		wantErr    error
		wantWrites int
	}{
		"fresh: first candidate": {owner: foo, want: first, wantWrites: 1},
		"idempotent: what the owner holds for the host": {
			existing: []runtime.Object{claimObj(second.String(), foo)},
			owner:    foo, want: second, wantWrites: 0,
		},
		"a claim for another host of the same owner does not count": {
			existing: []runtime.Object{claimObj(second.String(), Owner{Namespace: foo.Namespace, Name: foo.Name, Host: "old.bar.global"})},
			owner:    foo, want: first, wantWrites: 1,
		},
		"probing past AlreadyExists": {
			existing: []runtime.Object{claimObj(first.String(), bar)},
			owner:    foo, want: second, wantWrites: 2,
		},
		"dry run writes nothing and names the first free candidate": {
			existing: []runtime.Object{claimObj(first.String(), bar)},
			owner:    foo, dryRun: true, want: second, wantWrites: 0,
		},
		"dry run is idempotent too": {
			existing: []runtime.Object{claimObj(space.At(3).String(), foo)},
			owner:    foo, dryRun: true, want: space.At(3), wantWrites: 0,
		},
		"out of space": {
			existing: []runtime.Object{claimObj("240.0.0.0", bar), claimObj("240.0.0.1", bar), claimObj("240.0.0.2", bar), claimObj("240.0.0.3", bar)},
			owner:    foo, wantErr: ErrExhausted, wantWrites: 4,
		},
		"out of space in dry run": {
			existing: []runtime.Object{claimObj("240.0.0.0", bar), claimObj("240.0.0.1", bar), claimObj("240.0.0.2", bar), claimObj("240.0.0.3", bar)},
			owner:    foo, dryRun: true, wantErr: ErrExhausted, wantWrites: 0,
		},
		"probe budget": {
			existing: []runtime.Object{claimObj(first.String(), bar), claimObj(second.String(), bar)},
			owner:    foo, maxProbes: 2, wantErr: ErrExhausted, wantWrites: 2,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFake(tc.existing...)
			c := NewClaims(f, space, WithMaxProbes(tc.maxProbes))
			got, err := c.Allocate(context.Background(), tc.owner, tc.dryRun)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Allocate(%v) error = %v, want %v", tc.owner, err, tc.wantErr)
				}
			} else if err != nil || got != tc.want {
				t.Fatalf("Allocate(%v) = %v, %v; want %v", tc.owner, got, err, tc.want)
			}
			if n := writes(f); n != tc.wantWrites {
				t.Errorf("Allocate(%v) made %d writes, want %d: %v", tc.owner, n, tc.wantWrites, f.Actions())
			}
			if tc.wantErr == nil && !tc.dryRun {
				if h := holders(t, f)[got.String()]; h != tc.owner.String()+" "+tc.owner.Host {
					t.Errorf("claim %s held by %q, want %v", got, h, tc.owner)
				}
			}
		})
	}
}

func TestAllocateRejectsIncompleteOwner(t *testing.T) {
	tests := map[string]Owner{
		"no namespace": {Name: "a", Host: "a.b.global"},
		"no name":      {Namespace: "a", Host: "a.b.global"},
		"no host":      {Namespace: "a", Name: "b"},
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFake()
			if _, err := NewClaims(f, rules.DefaultVIPSpace()).Allocate(context.Background(), o, false); err == nil {
				t.Fatalf("Allocate(%#v) succeeded", o)
			}
			if len(f.Actions()) != 0 {
				t.Errorf("Allocate(%#v) called the API: %v", o, f.Actions())
			}
		})
	}
}

func TestClaim(t *testing.T) {
	space := rules.DefaultVIPSpace()
	tests := map[string]struct {
		existing   []runtime.Object
		addr       string
		owner      Owner
		dryRun     bool
		wantTaken  *Owner
		wantErr    string
		wantWrites int
	}{
		"free":                 {addr: "240.0.0.2", owner: foo, wantWrites: 1},
		"free, dry run":        {addr: "240.0.0.2", owner: foo, dryRun: true},
		"held by the owner":    {existing: []runtime.Object{claimObj("240.0.0.2", foo)}, addr: "240.0.0.2", owner: foo, wantWrites: 1},
		"held, owner has UID":  {existing: []runtime.Object{claimObj("240.0.0.2", foo)}, addr: "240.0.0.2", owner: Owner{Namespace: "foo", Name: "httpbin-bar", UID: "u1"}, wantWrites: 1},
		"taken":                {existing: []runtime.Object{claimObj("240.0.0.2", bar)}, addr: "240.0.0.2", owner: foo, wantTaken: &bar, wantWrites: 1},
		"taken, dry run":       {existing: []runtime.Object{claimObj("240.0.0.2", bar)}, addr: "240.0.0.2", owner: foo, dryRun: true, wantTaken: &bar},
		"Istio's range":        {addr: "240.240.0.5", owner: foo, wantErr: "Istio's own auto-allocation range"},
		"outside class E":      {addr: "10.0.0.1", owner: foo, wantErr: "outside the VIP range 240.0.0.0/4"},
		"broadcast":            {addr: "255.255.255.255", owner: foo, wantErr: "broadcast"},
		"same name, other ns":  {existing: []runtime.Object{claimObj("240.0.0.2", Owner{Namespace: "x", Name: foo.Name, Host: foo.Host})}, addr: "240.0.0.2", owner: foo, wantTaken: &Owner{Namespace: "x", Name: foo.Name, Host: foo.Host}, wantWrites: 1},
		"owner without a name": {addr: "240.0.0.2", owner: Owner{Namespace: "foo"}, wantErr: "needs both a namespace and a name"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFake(tc.existing...)
			err := NewClaims(f, space).Claim(context.Background(), netip.MustParseAddr(tc.addr), tc.owner, tc.dryRun)
			switch {
			case tc.wantTaken != nil:
				te, ok := errors.AsType[*TakenError](err)
				if !ok || te.Holder != *tc.wantTaken || te.Addr.String() != tc.addr {
					t.Fatalf("Claim(%s, %v) = %v, want TakenError by %v", tc.addr, tc.owner, err, *tc.wantTaken)
				}
				for _, s := range []string{tc.addr, tc.wantTaken.String(), "leave spec.addresses empty"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Claim(%s, %v) = %v, want an error containing %q", tc.addr, tc.owner, err, tc.wantErr)
				}
			case err != nil:
				t.Fatalf("Claim(%s, %v) = %v", tc.addr, tc.owner, err)
			}
			if n := writes(f); n != tc.wantWrites {
				t.Errorf("Claim made %d writes, want %d: %v", n, tc.wantWrites, f.Actions())
			}
			if tc.wantErr == "" && tc.wantTaken == nil && !tc.dryRun {
				if h := holders(t, f)[tc.addr]; !strings.HasPrefix(h, tc.owner.String()+" ") {
					t.Errorf("claim %s held by %q, want %v", tc.addr, h, tc.owner)
				}
			}
		})
	}
}

func TestClaimObject(t *testing.T) {
	f := newFake()
	c := NewClaims(f, rules.DefaultVIPSpace(), WithManagedBy(ManagedByWebhook))
	long := Owner{Namespace: strings.Repeat("n", 63), Name: strings.Repeat("a", 253), UID: "0b6e2e3c", Host: "h.n.global"}
	if err := c.Claim(context.Background(), netip.MustParseAddr("240.1.2.3"), long, false); err != nil {
		t.Fatal(err)
	}
	u, err := f.Resource(GVR).Get(context.Background(), "240.1.2.3", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u.GetAPIVersion() != "mesh.kubectl-mesh.io/v1alpha1" || u.GetKind() != "VIPClaim" {
		t.Errorf("claim is %s %s", u.GetAPIVersion(), u.GetKind())
	}
	l := u.GetLabels()
	if l[rules.ManagedByLabel] != ManagedByWebhook || l[OwnerNamespaceLabel] != long.Namespace {
		t.Errorf("labels %v", l)
	}
	if v := l[OwnerLabel]; len(v) > 63 || v != ownerHash(long) {
		t.Errorf("owner label %q is not the ≤63-character owner hash", v)
	}
	a, o, err := claimOf(u)
	if err != nil || a.String() != "240.1.2.3" || o != long {
		t.Errorf("claimOf = %v, %+v, %v; want the address and %+v", a, o, err, long)
	}
}

func TestRelease(t *testing.T) {
	type want struct {
		deleted bool
		err     bool
	}
	tests := map[string]struct {
		existing  []runtime.Object
		owner     Owner
		conflicts int // Conflict answers before the delete goes through
		want      want
	}{
		"held by the owner":    {existing: []runtime.Object{claimObj("240.0.0.2", foo)}, owner: foo, want: want{deleted: true}},
		"held by another":      {existing: []runtime.Object{claimObj("240.0.0.2", bar)}, owner: foo},
		"not claimed":          {owner: foo},
		"changed once":         {existing: []runtime.Object{claimObj("240.0.0.2", foo)}, owner: foo, conflicts: 1, want: want{deleted: true}},
		"keeps changing hands": {existing: []runtime.Object{claimObj("240.0.0.2", foo)}, owner: foo, conflicts: 10, want: want{err: true}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFake(tc.existing...)
			conflicts := tc.conflicts
			f.PrependReactor("delete", Resource, func(a clienttesting.Action) (bool, runtime.Object, error) {
				opts := a.(clienttesting.DeleteActionImpl).DeleteOptions
				if p := opts.Preconditions; p == nil || p.UID == nil || *p.UID != "uid-240.0.0.2" || p.ResourceVersion == nil || *p.ResourceVersion != "1" {
					t.Errorf("delete without UID and resourceVersion preconditions: %+v", opts)
				}
				if conflicts > 0 {
					conflicts--
					return true, nil, apierrors.NewConflict(GVR.GroupResource(), "240.0.0.2", errors.New("precondition failed"))
				}
				return false, nil, nil
			})
			err := NewClaims(f, rules.DefaultVIPSpace()).Release(context.Background(), netip.MustParseAddr("240.0.0.2"), tc.owner)
			if (err != nil) != tc.want.err {
				t.Fatalf("Release = %v, want error %v", err, tc.want.err)
			}
			_, held := holders(t, f)["240.0.0.2"]
			if deleted := len(tc.existing) > 0 && !held; deleted != tc.want.deleted {
				t.Errorf("deleted = %v, want %v", deleted, tc.want.deleted)
			}
		})
	}
}

func TestReleaseAll(t *testing.T) {
	// A claim carrying foo's owner label but naming another entry in its
	// spec (a hand-made label) must survive.
	forged := claimObj("240.0.0.9", bar)
	forged.SetLabels(map[string]string{OwnerLabel: ownerHash(foo)})
	f := newFake(claimObj("240.0.0.1", foo), claimObj("240.0.0.2", foo), claimObj("240.0.0.3", bar), forged)
	c := NewClaims(f, rules.DefaultVIPSpace())
	held, err := c.HeldBy(context.Background(), foo)
	if err != nil || len(held) != 2 || held[0].Addr.String() != "240.0.0.1" || held[1].Addr.String() != "240.0.0.2" {
		t.Fatalf("HeldBy(foo) = %v, %v; want 240.0.0.1 and 240.0.0.2", held, err)
	}
	if err := c.ReleaseAll(context.Background(), foo); err != nil {
		t.Fatal(err)
	}
	got := holders(t, f)
	if _, ok := got["240.0.0.1"]; ok || len(got) != 2 || got["240.0.0.3"] == "" || got["240.0.0.9"] == "" {
		t.Errorf("after ReleaseAll(foo) claims are %v, want only 240.0.0.3 and 240.0.0.9", got)
	}
}

func TestHolder(t *testing.T) {
	c := NewClaims(newFake(claimObj("240.0.0.2", foo)), rules.DefaultVIPSpace())
	if h, ok, err := c.Holder(context.Background(), netip.MustParseAddr("240.0.0.2")); err != nil || !ok || h.String() != foo.String() || h.Host != foo.Host {
		t.Errorf("Holder(240.0.0.2) = %v, %v, %v; want %v", h, ok, err, foo)
	}
	if _, ok, err := c.Holder(context.Background(), netip.MustParseAddr("240.0.0.3")); err != nil || ok {
		t.Errorf("Holder(240.0.0.3) = %v, %v; want not found", ok, err)
	}
}

func TestInstalled(t *testing.T) {
	tests := map[string]struct {
		listErr error
		want    bool
		wantErr bool
	}{
		"served":      {want: true},
		"no CRD":      {listErr: apierrors.NewNotFound(GVR.GroupResource(), "")},
		"unreachable": {listErr: errors.New("connection refused"), wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFake()
			if tc.listErr != nil {
				f.PrependReactor("list", Resource, func(clienttesting.Action) (bool, runtime.Object, error) { return true, nil, tc.listErr })
			}
			got, err := NewClaims(f, rules.DefaultVIPSpace()).Installed(context.Background())
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Errorf("Installed = %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestCRDYAML(t *testing.T) {
	deployed, err := os.ReadFile(filepath.Join("..", "..", "deploy", "webhook", "base", "vipclaims-crd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(deployed, CRDYAML()) {
		t.Fatal("deploy/webhook/base/vipclaims-crd.yaml differs from pkg/vip/vipclaims-crd.yaml; copy one over the other")
	}
	var crd unstructured.Unstructured
	if err := yaml.Unmarshal(CRDYAML(), &crd.Object); err != nil {
		t.Fatal(err)
	}
	checks := map[string]struct {
		path []string
		want string
	}{
		"name":   {[]string{"metadata", "name"}, Resource + "." + Group},
		"group":  {[]string{"spec", "group"}, Group},
		"kind":   {[]string{"spec", "names", "kind"}, Kind},
		"plural": {[]string{"spec", "names", "plural"}, Resource},
		"scope":  {[]string{"spec", "scope"}, "Cluster"},
	}
	for name, c := range checks {
		if got, _, _ := unstructured.NestedString(crd.Object, c.path...); got != c.want {
			t.Errorf("%s: %s = %q, want %q", name, strings.Join(c.path, "."), got, c.want)
		}
	}
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	if len(versions) != 1 || versions[0].(map[string]any)["name"] != Version {
		t.Errorf("versions = %v, want only %s", versions, Version)
	}
}

func TestTakenErrorNamesHolder(t *testing.T) {
	err := &TakenError{Addr: netip.MustParseAddr("240.0.0.2"), Holder: bar}
	for _, s := range []string{"240.0.0.2", "bar/other", "other.bar.global", "pick another address"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q does not mention %q", err, s)
		}
	}
}

// Acquire tells the claim it creates from one its owner already held, so
// that an undo releases only its own.
func TestAcquireSaysWhetherItCreated(t *testing.T) {
	space := mustSpace(t, "240.0.0.0/24")
	o := Owner{Namespace: "foo", Name: "a", Host: "a.foo.global"}
	other := Owner{Namespace: "foo", Name: "b", Host: "b.foo.global"}
	addr := netip.MustParseAddr("240.0.0.9")
	c := NewClaims(newFake(), space)
	steps := []struct {
		owner       Owner
		dryRun      bool
		wantCreated bool
		wantTaken   bool
	}{
		{owner: o, dryRun: true},
		{owner: o, wantCreated: true},
		{owner: o},
		{owner: other, wantTaken: true},
	}
	for i, s := range steps {
		created, err := c.Acquire(t.Context(), addr, s.owner, s.dryRun)
		var taken *TakenError
		if created != s.wantCreated || errors.As(err, &taken) != s.wantTaken || (err != nil && !s.wantTaken) {
			t.Fatalf("step %d: Acquire(%s, %s, dryRun %v) = %v, %v; want created %v, taken %v", i, addr, s.owner, s.dryRun, created, err, s.wantCreated, s.wantTaken)
		}
	}
}
