package vip

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"net/netip"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// The VIPClaim API. Claims are cluster-scoped and named after the address.
const (
	Group    = "mesh.kubectl-mesh.io"
	Version  = "v1alpha1"
	Kind     = "VIPClaim"
	Resource = "vipclaims"
)

// GVR is the VIPClaim resource.
var GVR = schema.GroupVersionResource{Group: Group, Version: Version, Resource: Resource}

// Labels on every claim. The owner label is a hash because a namespace/name
// pair can be longer than a label value may be (63 characters); the spec is
// the authority and is checked after every lookup by label.
const (
	OwnerLabel          = Group + "/owner"
	OwnerNamespaceLabel = Group + "/owner-namespace"
)

// Annotations on every claim. They repeat the spec's owner so that a watch
// of object metadata alone (the cache) knows the holder without the spec: a
// label value is limited to 63 characters, a ServiceEntry name to 253.
// Claims written by older versions lack them; the cache then knows the
// holder by OwnerLabel only, and the repair loop adds them.
const (
	OwnerNameAnnotation = Group + "/owner-name"
	OwnerUIDAnnotation  = Group + "/owner-uid"
	HostAnnotation      = Group + "/host"
	// TouchedAnnotation is when a Claims last reused the claim for its
	// holder (RFC 3339), creationTimestamp if never: the repair loop does not
	// count a claim touched within its grace period as orphaned.
	TouchedAnnotation = Group + "/touched"
)

// ManagedByWebhook is the managed-by label value of claims the webhook
// creates; kubectl-mesh uses rules.ManagedByValue.
const ManagedByWebhook = "mesh-webhook"

//go:embed vipclaims-crd.yaml
var crdYAML []byte

// CRDYAML is the VIPClaim CustomResourceDefinition manifest, identical to
// deploy/webhook/base/vipclaims-crd.yaml.
func CRDYAML() []byte { return append([]byte(nil), crdYAML...) }

// Owner is the ServiceEntry that holds (or wants) a VIP. UID is empty at
// CREATE admission time (the API server assigns it later); the repair loop
// fills it in. Ownership is decided by namespace and name: a claim whose UID
// differs still belongs to the ServiceEntry of that name.
type Owner struct{ Namespace, Name, UID, Host string }

// String is "namespace/name".
func (o Owner) String() string { return o.Namespace + "/" + o.Name }

// Same reports whether o and p are the same ServiceEntry.
func (o Owner) Same(p Owner) bool { return o.Namespace == p.Namespace && o.Name == p.Name }

func (o Owner) validate() error {
	if o.Namespace == "" || o.Name == "" {
		return fmt.Errorf("VIP owner %q needs both a namespace and a name", o.String())
	}
	return nil
}

// ownerSum is a digest of an owner's namespace/name.
type ownerSum [20]byte

func sumOf(o Owner) (s ownerSum) {
	full := sha256.Sum256([]byte(o.Namespace + "/" + o.Name))
	copy(s[:], full[:])
	return s
}

// ownerHash is the owner label value: the hex of sumOf, short enough for a
// label and without the characters a label value forbids.
func ownerHash(o Owner) string {
	s := sumOf(o)
	return hex.EncodeToString(s[:])
}

// ownerSelector selects the claims of o by label (to be verified on spec).
func ownerSelector(o Owner) string { return OwnerLabel + "=" + ownerHash(o) }

// TakenError says that an address is held by another ServiceEntry.
type TakenError struct {
	Addr   netip.Addr
	Holder Owner
}

func (e *TakenError) Error() string {
	held := "ServiceEntry " + e.Holder.String()
	if e.Holder.Host != "" {
		held += " (host " + e.Holder.Host + ")"
	}
	return fmt.Sprintf("VIP %s is already claimed by %s; pick another address or leave spec.addresses empty to have a free one allocated", e.Addr, held)
}

// newClaim builds the claim object for addr held by o.
func newClaim(addr netip.Addr, o Owner, managedBy string) *unstructured.Unstructured {
	se := map[string]any{"namespace": o.Namespace, "name": o.Name}
	if o.UID != "" {
		se["uid"] = o.UID
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": Group + "/" + Version,
		"kind":       Kind,
		"metadata": map[string]any{
			"name": addr.String(),
			"labels": map[string]any{
				rules.ManagedByLabel: managedBy,
				OwnerLabel:           ownerHash(o),
				OwnerNamespaceLabel:  o.Namespace,
			},
			"annotations": ownerAnnotations(o),
		},
		"spec": map[string]any{
			"address":      addr.String(),
			"host":         o.Host,
			"serviceEntry": se,
		},
	}}
	return u
}

// ownerAnnotations are the annotations that name o on its claims.
func ownerAnnotations(o Owner) map[string]any {
	a := map[string]any{OwnerNameAnnotation: o.Name, HostAnnotation: o.Host}
	if o.UID != "" {
		a[OwnerUIDAnnotation] = o.UID
	}
	return a
}

// completeMeta gives u the owner labels and annotations of its holder h
// (read from the spec) where they are missing or differ, as on a claim
// written by an older version. It reports whether u changed.
func completeMeta(u *unstructured.Unstructured, h Owner) bool {
	l, a := u.GetLabels(), u.GetAnnotations()
	if l == nil {
		l = map[string]string{}
	}
	if a == nil {
		a = map[string]string{}
	}
	want := map[string]string{OwnerNameAnnotation: h.Name, HostAnnotation: h.Host}
	if h.UID != "" {
		want[OwnerUIDAnnotation] = h.UID
	}
	changed := false
	for k, v := range want {
		if a[k] != v {
			a[k], changed = v, true
		}
	}
	for k, v := range map[string]string{OwnerLabel: ownerHash(h), OwnerNamespaceLabel: h.Namespace} {
		if l[k] != v {
			l[k], changed = v, true
		}
	}
	u.SetLabels(l)
	u.SetAnnotations(a)
	return changed
}

// ownerOfMeta reads the holder of a claim from its labels and annotations.
// A claim written before the owner annotations existed names its owner by
// namespace and owner hash only: o then has no name.
func ownerOfMeta(m metav1.Object) (o Owner, sum ownerSum) {
	l, a := m.GetLabels(), m.GetAnnotations()
	o = Owner{Namespace: l[OwnerNamespaceLabel], Name: a[OwnerNameAnnotation], UID: a[OwnerUIDAnnotation], Host: a[HostAnnotation]}
	if o.Namespace != "" && o.Name != "" {
		return o, sumOf(o)
	}
	_, _ = hex.Decode(sum[:], []byte(l[OwnerLabel])) // a malformed label leaves (part of) it zero: matches no owner
	return Owner{Namespace: o.Namespace}, sum
}

// lastTouch is when the claim was last reused by its holder or, if never,
// created.
func lastTouch(m metav1.Object) time.Time {
	if t, ok := touched(m); ok {
		return t
	}
	return m.GetCreationTimestamp().Time
}

// touched is when the claim was last reused by its holder, if ever.
func touched(m metav1.Object) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, m.GetAnnotations()[TouchedAnnotation])
	return t, err == nil
}

// claimOf reads the address and holder of a claim object.
func claimOf(u *unstructured.Unstructured) (netip.Addr, Owner, error) {
	s, _, _ := unstructured.NestedString(u.Object, "spec", "address")
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, Owner{}, fmt.Errorf("VIPClaim %s: spec.address %q is not an address", u.GetName(), s)
	}
	var o Owner
	o.Host, _, _ = unstructured.NestedString(u.Object, "spec", "host")
	o.Namespace, _, _ = unstructured.NestedString(u.Object, "spec", "serviceEntry", "namespace")
	o.Name, _, _ = unstructured.NestedString(u.Object, "spec", "serviceEntry", "name")
	o.UID, _, _ = unstructured.NestedString(u.Object, "spec", "serviceEntry", "uid")
	if err := o.validate(); err != nil {
		return netip.Addr{}, Owner{}, fmt.Errorf("VIPClaim %s: spec.serviceEntry: %w", u.GetName(), err)
	}
	return a, o, nil
}
