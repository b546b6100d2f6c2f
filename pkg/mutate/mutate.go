// Package mutate owns the defaulting of ServiceEntries with a `.global`
// host: it fills only what is missing (location, resolution, the VIP,
// endpoint ports) on the unstructured object, never touches status, and is
// idempotent, so the admission handler can answer with a JSON patch computed
// from the raw request. It reads entries through pkg/rules' ServiceEntry view
// and imports nothing else of this module (validation is pkg/validate's, and
// the handler calls both).
package mutate

import (
	"context"
	"fmt"
	"net/netip"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// AllocateFunc returns the VIP for host, claiming it for the object being
// admitted. It is only called when the object has one valid `.global` host
// and no addresses.
type AllocateFunc func(ctx context.Context, host string) (netip.Addr, error)

// Result says what Default filled in.
type Result struct {
	Location, Resolution bool
	Address              netip.Addr // valid when a VIP was allocated
	EndpointPorts        int        // number of endpoint port entries added
}

// Changed reports whether anything was filled in.
func (r Result) Changed() bool {
	return r.Location || r.Resolution || r.Address.IsValid() || r.EndpointPorts > 0
}

// Default fills what a ServiceEntry the `.global` rules apply to is missing:
// location MESH_INTERNAL, resolution DNS, every endpoint's missing port
// names mapped to the gateway port, and, when alloc is not nil, the VIP
// (see Allocate). Values that are present, even invalid ones, are left for
// validation to report. Objects the rules do not apply to are returned
// untouched.
func Default(ctx context.Context, obj *unstructured.Unstructured, cfg rules.Policy, alloc AllocateFunc) (Result, error) {
	var res Result
	if obj == nil {
		return res, nil
	}
	se := rules.ReadServiceEntry(obj.Object)
	spec, ok := obj.Object["spec"].(map[string]any)
	if !ok || !se.Applies(cfg.Suffix) {
		return res, nil
	}
	if isUnset(spec, "location") {
		spec["location"] = rules.DefaultLocation
		res.Location = true
	}
	if isUnset(spec, "resolution") {
		spec["resolution"] = rules.DefaultResolution
		res.Resolution = true
	}
	res.EndpointPorts = defaultEndpointPorts(spec, se.PortNames(), int64(cfg.GatewayPort()))
	var err error
	res.Address, err = allocate(ctx, spec, se, cfg.Suffix, alloc)
	return res, err
}

// Allocate gives a ServiceEntry the `.global` rules apply to, with one
// valid `.global` host and empty addresses, the VIP alloc returns, and
// returns it; otherwise it changes nothing and returns the zero Addr. se
// is obj as the caller read it: the admission handler reads an entry once,
// then calls Default (without alloc), which changes neither hosts nor
// addresses, then validation, then Allocate, so that only an entry that
// will be admitted takes a VIP.
func Allocate(ctx context.Context, obj *unstructured.Unstructured, se rules.ServiceEntry, cfg rules.Policy, alloc AllocateFunc) (netip.Addr, error) {
	if obj == nil {
		return netip.Addr{}, nil
	}
	spec, ok := obj.Object["spec"].(map[string]any)
	if !ok || !se.Applies(cfg.Suffix) {
		return netip.Addr{}, nil
	}
	return allocate(ctx, spec, se, cfg.Suffix, alloc)
}

func allocate(ctx context.Context, spec map[string]any, se rules.ServiceEntry, suffix string, alloc AllocateFunc) (netip.Addr, error) {
	// Addresses of the wrong type are not empty: validation reports them.
	if alloc == nil || len(se.Addresses) > 0 || se.SkippedAt("spec.addresses") {
		return netip.Addr{}, nil
	}
	host := se.GlobalHost(suffix)
	if host == "" {
		return netip.Addr{}, nil
	}
	addr, err := alloc(ctx, host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("allocate a VIP for %s: %w", host, err)
	}
	spec["addresses"] = []any{addr.String()}
	return addr, nil
}

// isUnset: missing, null or the empty string (what a client that zeroes an
// enum sends); any other value is the user's choice.
func isUnset(m map[string]any, key string) bool {
	v, ok := m[key]
	return !ok || v == nil || v == ""
}

// defaultEndpointPorts maps the port names missing on each endpoint to the
// gateway port.
func defaultEndpointPorts(spec map[string]any, names []string, gatewayPort int64) int {
	eps, _ := spec["endpoints"].([]any)
	added := 0
	for _, e := range eps {
		ep, ok := e.(map[string]any)
		if !ok || len(names) == 0 {
			continue
		}
		var epPorts map[string]any
		switch p := ep["ports"].(type) {
		case nil:
			epPorts = map[string]any{}
		case map[string]any:
			epPorts = p
		default:
			continue // not a map: validation reports it
		}
		for _, n := range names {
			if _, ok := epPorts[n]; !ok {
				epPorts[n] = gatewayPort
				added++
			}
		}
		if len(epPorts) > 0 {
			ep["ports"] = epPorts
		}
	}
	return added
}
