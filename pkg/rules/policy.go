package rules

// Mode is how the admission policy enforces violations.
type Mode string

// Enforcement modes: deny rejects a violating object; warn admits it and
// returns the same messages as admission warnings, to roll the policy out
// on a cluster that already holds non-conforming entries.
const (
	ModeDeny Mode = "deny"
	ModeWarn Mode = "warn"
)

// Policy is the validated `.global` policy mesh-webhook enforces: the host
// suffix, the VIP space, the gateway ports endpoints may use and the
// enforcement mode. Flags and the ConfigMap that spell it are parsed by the
// webhook's config package.
type Policy struct {
	Suffix              string
	Space               VIPSpace
	AllowedGatewayPorts []uint32
	Mode                Mode
}

// DefaultPolicy is the policy of DESIGN: `.global`, class E minus Istio's
// range and broadcast, gateway port 15443, deny.
func DefaultPolicy() Policy {
	return Policy{
		Suffix:              DefaultSuffix,
		Space:               DefaultVIPSpace(),
		AllowedGatewayPorts: DefaultAllowedGatewayPorts(),
		Mode:                ModeDeny,
	}
}

// GatewayPort is the port endpoints are defaulted to: the first allowed one.
func (p Policy) GatewayPort() uint32 {
	if len(p.AllowedGatewayPorts) == 0 {
		return GatewayPort
	}
	return p.AllowedGatewayPorts[0]
}
