// Package webhooktest provides in-memory stand-ins for mesh-webhook's
// dependencies and AdmissionReview builders, for handler tests, fuzz
// targets and benchmarks that must not need an API server.
package webhooktest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

// Claims is an in-memory webhook.Claims with the same contract as the
// API-server-backed one: one holder per address, idempotent per owner,
// dry runs never write.
type Claims struct {
	Space rules.VIPSpace

	mu      sync.Mutex
	holders map[netip.Addr]vip.Owner
	held    map[string]netip.Addr // by namespace/name and host
}

// NewClaims returns empty claims over space.
func NewClaims(space rules.VIPSpace) *Claims {
	return &Claims{Space: space, holders: map[netip.Addr]vip.Owner{}, held: map[string]netip.Addr{}}
}

func same(a, b vip.Owner) bool { return a.Namespace == b.Namespace && a.Name == b.Name }

// Allocate implements webhook.Claims.
func (c *Claims) Allocate(_ context.Context, o vip.Owner, dryRun bool) (netip.Addr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.held[o.String()+" "+o.Host]; ok {
		return a, nil
	}
	for a := range c.Space.Candidates(o.Host) {
		if _, taken := c.holders[a]; taken {
			continue
		}
		if !dryRun {
			c.holders[a] = o
			c.held[o.String()+" "+o.Host] = a
		}
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("no free VIP left in %s", c.Space)
}

// Claim implements webhook.Claims.
func (c *Claims) Claim(_ context.Context, addr netip.Addr, o vip.Owner, dryRun bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.holders[addr]; ok {
		if same(h, o) {
			return nil
		}
		return &vip.TakenError{Addr: addr, Holder: h}
	}
	if !dryRun {
		c.holders[addr] = o
		c.held[o.String()+" "+o.Host] = addr
	}
	return nil
}

// ReleaseOwned implements webhook.Claims: it frees o's claims unless they were
// recorded for another UID.
func (c *Claims) ReleaseOwned(_ context.Context, o vip.Owner, dryRun bool) ([]netip.Addr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []netip.Addr
	for a, h := range c.holders {
		if !same(h, o) || (h.UID != "" && o.UID != "" && h.UID != o.UID) {
			continue
		}
		out = append(out, a)
		if !dryRun {
			delete(c.holders, a)
			delete(c.held, h.String()+" "+h.Host)
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out, nil
}

// Holder returns who holds addr.
func (c *Claims) Holder(addr netip.Addr) (vip.Owner, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.holders[addr]
	return h, ok
}

// Len is the number of claims.
func (c *Claims) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.holders)
}

// Review wraps object in a v1 AdmissionReview for a ServiceEntry request, as
// the API server sends it. object is spliced in verbatim, so it may be
// malformed JSON.
func Review(op admissionv1.Operation, namespace, name string, object []byte, dryRun bool) []byte {
	return review("ServiceEntry", "serviceentries", op, namespace, name, "object", object, dryRun)
}

// RuleReview is Review for a DestinationRule.
func RuleReview(op admissionv1.Operation, namespace, name string, object []byte, dryRun bool) []byte {
	return review("DestinationRule", "destinationrules", op, namespace, name, "object", object, dryRun)
}

// DeleteReview is the review of a ServiceEntry DELETE: old is the stored
// object, sent as oldObject.
func DeleteReview(namespace, name string, old []byte, dryRun bool) []byte {
	return review("ServiceEntry", "serviceentries", admissionv1.Delete, namespace, name, "oldObject", old, dryRun)
}

func review(kind, resource string, op admissionv1.Operation, namespace, name, objectField string, object []byte, dryRun bool) []byte {
	gvk := metav1.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: kind}
	r := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:         types.UID("7f0d7b5e-0000-4000-8000-" + fmt.Sprintf("%012d", len(object))),
			Kind:        gvk,
			Resource:    metav1.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: resource},
			RequestKind: &gvk,
			Name:        name,
			Namespace:   namespace,
			Operation:   op,
			DryRun:      &dryRun,
		},
	}
	req, err := json.Marshal(r.Request)
	if err != nil {
		panic(err) // only typed values
	}
	if len(object) > 0 {
		req = slices.Concat([]byte(`{"`+objectField+`":`), object, []byte(","), req[1:])
	}
	return slices.Concat([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":`), req, []byte("}"))
}
