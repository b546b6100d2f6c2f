package vip

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"net/netip"

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

// ownerHash is the owner label value: a hex digest of namespace/name, short
// enough for a label and without the characters a label value forbids.
func ownerHash(o Owner) string {
	sum := sha256.Sum256([]byte(o.Namespace + "/" + o.Name))
	return hex.EncodeToString(sum[:20])
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
		},
		"spec": map[string]any{
			"address":      addr.String(),
			"host":         o.Host,
			"serviceEntry": se,
		},
	}}
	return u
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
