package rules

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValidateHost checks one entry of spec.hosts against the host form.
func ValidateHost(host, suffix string, fldPath *field.Path) field.ErrorList {
	if _, err := ParseHost(host, suffix); err != nil {
		reason := err.Error()
		if he, ok := errors.AsType[*HostError](err); ok {
			reason = he.Reason + "; " + HostFormHint(he.Suffix)
		}
		return field.ErrorList{field.Invalid(fldPath, host, reason)}
	}
	return nil
}

// ValidateVIP checks one entry of spec.addresses: a single IPv4 address (no
// prefix length) inside the VIP space.
func ValidateVIP(value string, space VIPSpace, fldPath *field.Path) field.ErrorList {
	if _, err := ParseVIP(value, space); err != nil {
		return field.ErrorList{field.Invalid(fldPath, value, err.Error())}
	}
	return nil
}

// ParseVIP parses value as a VIP of the space, with an error that says which
// rule it breaks and what to use instead.
func ParseVIP(value string, space VIPSpace) (netip.Addr, error) {
	hint := fmt.Sprintf("use one address from %s, or leave addresses empty to have one allocated", space)
	if strings.Contains(value, "/") {
		p, err := netip.ParsePrefix(value)
		if err == nil && p.IsSingleIP() {
			return netip.Addr{}, fmt.Errorf("must be a single address without a prefix length (%s, not %s)", p.Addr(), value)
		}
		return netip.Addr{}, fmt.Errorf("must be a single IPv4 address, not a CIDR range: one VIP stands for one remote service; %s", hint)
	}
	a, err := netip.ParseAddr(value)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("is not an IPv4 address; %s", hint)
	}
	if !a.Is4() {
		return netip.Addr{}, fmt.Errorf("must be an IPv4 address; %s", hint)
	}
	switch {
	case a.IsLoopback():
		return netip.Addr{}, fmt.Errorf("is a loopback address; %s", hint)
	case a.IsMulticast():
		return netip.Addr{}, fmt.Errorf("is a multicast address; %s", hint)
	}
	if q, ok := space.ExcludedBy(a); ok {
		why := "an excluded range"
		switch q.String() {
		case "240.240.0.0/16":
			why = "Istio's own auto-allocation range"
		case "255.255.255.255/32":
			why = "the broadcast address"
		}
		return netip.Addr{}, fmt.Errorf("lies in %s %s; %s", why, q, hint)
	}
	if !space.Contains(a) {
		return netip.Addr{}, fmt.Errorf("is outside the VIP range %s (class E, never routed, so it cannot shadow a real destination); %s", space.Range(), hint)
	}
	return a, nil
}

// DefaultAllowedGatewayPorts is the gateway port set a `.global` endpoint may
// map service ports to.
func DefaultAllowedGatewayPorts() []uint32 { return []uint32{GatewayPort} }

// ValidateGatewayPort checks an endpoint port number against the allowed
// gateway ports.
func ValidateGatewayPort(port int64, allowed []uint32, fldPath *field.Path) field.ErrorList {
	if len(allowed) == 0 {
		allowed = DefaultAllowedGatewayPorts()
	}
	if port >= 0 && port <= 65535 && slices.Contains(allowed, uint32(port)) {
		return nil
	}
	want := make([]string, len(allowed))
	for i, p := range allowed {
		want[i] = strconv.FormatUint(uint64(p), 10)
	}
	return field.ErrorList{field.NotSupported(fldPath, port, want)}
}

// ValidateLocation accepts an unset location (defaulted) and MESH_INTERNAL.
func ValidateLocation(location string, fldPath *field.Path) field.ErrorList {
	if location == "" || location == LocationMeshInternal {
		return nil
	}
	return field.ErrorList{field.Invalid(fldPath, location,
		"must be MESH_INTERNAL: a remote service shares the mesh's root of trust and is reached with ISTIO_MUTUAL through the remote gateway; set location: MESH_INTERNAL or leave it out")}
}

// ValidateResolution accepts an unset resolution (defaulted), DNS and STATIC.
func ValidateResolution(resolution string, fldPath *field.Path) field.ErrorList {
	switch resolution {
	case "", ResolutionDNS, ResolutionStatic:
		return nil
	case ResolutionNone:
		return field.ErrorList{field.Invalid(fldPath, resolution,
			"must be DNS or STATIC: with NONE the sidecar forwards to the VIP itself, which routes nowhere; use DNS for a gateway host name or STATIC for gateway IPs")}
	}
	return field.ErrorList{field.NotSupported(fldPath, resolution, []string{ResolutionDNS, ResolutionStatic})}
}

// ValidateProtocol checks a ServiceEntry port protocol.
func ValidateProtocol(protocol string, fldPath *field.Path) field.ErrorList {
	if protocol == "" || IsProtocol(protocol) {
		return nil
	}
	return field.ErrorList{field.NotSupported(fldPath, protocol, Protocols())}
}
