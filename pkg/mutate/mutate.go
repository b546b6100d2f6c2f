// Package mutate owns the defaulting of ServiceEntries with a `.global`
// host: it fills only what is missing (location, resolution, the VIP,
// endpoint ports) on the unstructured object, never touches status, and is
// idempotent, so the admission handler can answer with a JSON patch computed
// from the raw request.
package mutate

import (
	"context"
	"fmt"
	"net/netip"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/validate"
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
// names mapped to the gateway port, and, when alloc is not nil and addresses
// are empty, an allocated VIP. Values that are present, even invalid ones,
// are left for validation to report. Objects the rules do not apply to are
// returned untouched.
func Default(ctx context.Context, obj *unstructured.Unstructured, cfg rules.Policy, alloc AllocateFunc) (Result, error) {
	var res Result
	if !validate.Applies(obj, cfg.Suffix) {
		return res, nil
	}
	spec, ok := obj.Object["spec"].(map[string]any)
	if !ok {
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
	res.EndpointPorts = defaultEndpointPorts(spec, int64(cfg.GatewayPort()))
	if alloc != nil && isEmptyList(spec, "addresses") {
		host := validate.GlobalHost(obj, cfg.Suffix)
		if host != "" {
			addr, err := alloc(ctx, host)
			if err != nil {
				return res, fmt.Errorf("allocate a VIP for %s: %w", host, err)
			}
			spec["addresses"] = []any{addr.String()}
			res.Address = addr
		}
	}
	return res, nil
}

// isUnset: missing, null or the empty string (what a client that zeroes an
// enum sends); any other value is the user's choice.
func isUnset(m map[string]any, key string) bool {
	v, ok := m[key]
	return !ok || v == nil || v == ""
}

func isEmptyList(m map[string]any, key string) bool {
	v, ok := m[key]
	if !ok || v == nil {
		return true
	}
	l, ok := v.([]any)
	return ok && len(l) == 0
}

func defaultEndpointPorts(spec map[string]any, gatewayPort int64) int {
	ports, _ := spec["ports"].([]any)
	var names []string
	for _, p := range ports {
		pm, _ := p.(map[string]any)
		if n, ok := pm["name"].(string); ok && n != "" {
			names = append(names, n)
		}
	}
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
