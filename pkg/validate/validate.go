// Package validate owns the admission-time validation of ServiceEntries with
// a `.global` host: the rules of the `.global` model (from pkg/rules) plus
// what Istio's own validator would reject for a ServiceEntry, reported all at
// once as field errors on their paths, each saying how to fix it.
//
// It works on unstructured objects so that it sees exactly what the client
// sent: an unset location is not MESH_EXTERNAL, a number sent as a string is
// reported instead of silently decoded. The checks across fields read
// pkg/rules' ServiceEntry view; the package imports nothing else of this
// module.
package validate

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// ServiceEntryKind is the GroupKind errors are reported against.
var ServiceEntryKind = schema.GroupKind{Group: rules.IstioGroup, Kind: rules.KindServiceEntry}

// Warnings for what is legal but likely a mistake.
const (
	WarnNoClusterLabel = "spec.endpoints[%s]: no %q label; a .global DestinationRule subset selects endpoints by this label, so without it version routing cannot pick these endpoints"
)

// NewInvalid is the 422 a denied ServiceEntry gets.
func NewInvalid(name string, errs field.ErrorList) error {
	return apierrors.NewInvalid(ServiceEntryKind, name, errs)
}

// ValidateServiceEntry checks a ServiceEntry the `.global` rules apply to
// (rules.ServiceEntry.Applies), returning every
// violation at once and warnings for legal but suspicious settings. fld is
// the path of the spec (nil means "spec"). An object the rules do not apply
// to gets no errors.
func ValidateServiceEntry(obj *unstructured.Unstructured, cfg rules.Policy, fld *field.Path) (field.ErrorList, []string) { //nolint:revive // named like apimachinery validators (ValidateXSpec), which callers know
	if obj == nil {
		return nil, nil
	}
	se := rules.ReadServiceEntry(obj.Object)
	if !se.Applies(cfg.Suffix) {
		return nil, nil
	}
	if fld == nil {
		fld = field.NewPath("spec")
	}
	spec, ok := obj.Object["spec"].(map[string]any)
	if !ok {
		return field.ErrorList{field.Invalid(fld, obj.Object["spec"], "must be an object")}, nil
	}
	v := &validator{cfg: cfg, fld: fld, spec: spec, se: se}
	v.hosts()
	v.location()
	v.resolution()
	v.addresses()
	v.ports()
	v.endpoints()
	v.workloadSelector()
	return v.errs, v.warnings
}

// validator walks the raw spec for the field-by-field checks, which must
// see a value of the wrong type to report it; the checks across fields
// read se, the typed view of the same object.
type validator struct {
	cfg      rules.Policy
	fld      *field.Path
	spec     map[string]any
	se       rules.ServiceEntry
	errs     field.ErrorList
	warnings []string
}

func (v *validator) add(errs ...*field.Error) { v.errs = append(v.errs, errs...) }

// str reads an optional string field; a value of another type is an error.
func (v *validator) str(m map[string]any, key string, fld *field.Path) (string, bool) {
	raw, ok := m[key]
	if !ok || raw == nil {
		return "", false
	}
	s, ok := raw.(string)
	if !ok {
		v.add(field.TypeInvalid(fld, raw, "must be a string"))
		return "", false
	}
	return s, true
}

// list reads an optional list field; a value of another type is an error.
func (v *validator) list(m map[string]any, key string, fld *field.Path) []any {
	raw, ok := m[key]
	if !ok || raw == nil {
		return nil
	}
	l, ok := raw.([]any)
	if !ok {
		v.add(field.TypeInvalid(fld, raw, "must be a list"))
		return nil
	}
	return l
}

// requiredList reads a list that must have at least one item; ok is false
// (and the error recorded) when it is missing, empty or not a list.
func (v *validator) requiredList(m map[string]any, key string, fld *field.Path, need string) ([]any, bool) {
	raw := m[key]
	if raw == nil {
		v.add(field.Required(fld, need))
		return nil, false
	}
	l, ok := raw.([]any)
	if !ok {
		v.add(field.TypeInvalid(fld, raw, "must be a list"))
		return nil, false
	}
	if len(l) == 0 {
		v.add(field.Required(fld, need))
		return nil, false
	}
	return l, true
}

func (v *validator) hosts() {
	fld := v.fld.Child("hosts")
	hosts := v.list(v.spec, "hosts", fld)
	var global []int
	for i, h := range hosts {
		s, ok := h.(string)
		if !ok {
			v.add(field.TypeInvalid(fld.Index(i), h, "must be a string"))
			continue
		}
		if rules.HasSuffix(s, v.cfg.Suffix) {
			global = append(global, i)
		}
	}
	if len(hosts) > 1 {
		for i, h := range hosts {
			s, _ := h.(string)
			if !rules.HasSuffix(s, v.cfg.Suffix) {
				v.add(field.Forbidden(fld.Index(i), fmt.Sprintf("a ServiceEntry with a .%s host must have exactly one host: its VIP and gateway endpoints serve one remote service; move %q to its own ServiceEntry", v.cfg.Suffix, s)))
			}
		}
		if len(global) > 1 {
			for _, i := range global[1:] {
				v.add(field.Forbidden(fld.Index(i), fmt.Sprintf("only one .%s host per ServiceEntry: one VIP cannot serve two remote services; create one ServiceEntry per remote service", v.cfg.Suffix)))
			}
		}
	}
	for _, i := range global {
		v.add(rules.ValidateHost(hosts[i].(string), v.cfg.Suffix, fld.Index(i))...)
	}
}

func (v *validator) location() {
	fld := v.fld.Child("location")
	if s, ok := v.str(v.spec, "location", fld); ok {
		v.add(rules.ValidateLocation(s, fld)...)
	}
}

func (v *validator) resolution() string {
	fld := v.fld.Child("resolution")
	s, ok := v.str(v.spec, "resolution", fld)
	if ok {
		v.add(rules.ValidateResolution(s, fld)...)
	}
	return s
}

func (v *validator) addresses() {
	fld := v.fld.Child("addresses")
	addrs, ok := v.requiredList(v.spec, "addresses", fld, fmt.Sprintf("exactly one VIP from %s; leave addresses out and the mutating webhook allocates one (is it installed?)", v.cfg.Space))
	if !ok {
		return
	}
	if len(addrs) > 1 {
		v.add(field.TooMany(fld, len(addrs), 1))
	}
	for i, a := range addrs {
		s, ok := a.(string)
		if !ok {
			v.add(field.TypeInvalid(fld.Index(i), a, "must be a string"))
			continue
		}
		v.add(rules.ValidateVIP(s, v.cfg.Space, fld.Index(i))...)
	}
}

// ports validates spec.ports the way Istio does (names, numbers, protocols,
// duplicates).
func (v *validator) ports() {
	fld := v.fld.Child("ports")
	names := map[string]bool{}
	ports, ok := v.requiredList(v.spec, "ports", fld, "at least one port, e.g. {name: http, number: 8000, protocol: HTTP}, as the remote Service exposes it")
	if !ok {
		return
	}
	numbers := map[int64]bool{}
	for i, raw := range ports {
		pf := fld.Index(i)
		p, ok := raw.(map[string]any)
		if !ok {
			v.add(field.TypeInvalid(pf, raw, "must be an object with name, number and protocol"))
			continue
		}
		name, hasName := v.str(p, "name", pf.Child("name"))
		switch {
		case !hasName || name == "":
			v.add(field.Required(pf.Child("name"), "endpoints map port names to the gateway port, so every port needs a name, e.g. http"))
		case len(validation.IsDNS1123Label(name)) > 0:
			v.add(field.Invalid(pf.Child("name"), name, "must be a DNS-1123 label (lower-case letters, digits and '-'), e.g. http-web"))
		case names[name]:
			v.add(field.Duplicate(pf.Child("name"), name))
		default:
			names[name] = true
		}
		if n, ok := v.number(p, "number", pf.Child("number"), true); ok {
			if numbers[n] {
				v.add(field.Duplicate(pf.Child("number"), n))
			}
			numbers[n] = true
		}
		v.number(p, "targetPort", pf.Child("targetPort"), false)
		if proto, ok := v.str(p, "protocol", pf.Child("protocol")); ok && proto != "" {
			v.add(rules.ValidateProtocol(proto, pf.Child("protocol"))...)
		}
	}
}

// portNames is the set of the entry's valid port names: the names an
// endpoint may map (an invalid name is reported on spec.ports already).
func (v *validator) portNames() map[string]bool {
	names := map[string]bool{}
	for _, n := range v.se.PortNames() {
		if len(validation.IsDNS1123Label(n)) == 0 {
			names[n] = true
		}
	}
	return names
}

// number reads a port number (1-65535). JSON numbers arrive as int64 or
// float64 depending on the decoder.
func (v *validator) number(m map[string]any, key string, fld *field.Path, required bool) (int64, bool) {
	raw, ok := m[key]
	if !ok || raw == nil {
		if required {
			v.add(field.Required(fld, "a port number in 1-65535"))
		}
		return 0, false
	}
	n, ok := rules.Integer(raw)
	if !ok {
		v.add(field.TypeInvalid(fld, raw, "must be an integer port number in 1-65535"))
		return 0, false
	}
	if n < 1 || n > 65535 {
		v.add(field.Invalid(fld, n, "must be a port number in 1-65535"))
		return 0, false
	}
	return n, true
}

func (v *validator) endpoints() {
	fld := v.fld.Child("endpoints")
	portNames := v.portNames()
	eps, ok := v.requiredList(v.spec, "endpoints", fld, "at least one endpoint: the remote cluster's ingress gateway address, with every port mapped to the gateway port "+strconv.FormatUint(uint64(v.cfg.GatewayPort()), 10))
	if !ok {
		return
	}
	var unlabelled []int
	for i, raw := range eps {
		ef := fld.Index(i)
		ep, ok := raw.(map[string]any)
		if !ok {
			v.add(field.TypeInvalid(ef, raw, "must be an object with address, ports and labels"))
			continue
		}
		addr, _ := v.str(ep, "address", ef.Child("address"))
		switch {
		case addr == "":
			v.add(field.Required(ef.Child("address"), "the remote cluster's ingress gateway address (IP or DNS name)"))
		case strings.HasPrefix(addr, "unix://"):
			v.add(field.Invalid(ef.Child("address"), addr, "a unix socket cannot reach a remote gateway; use the gateway's IP or DNS name"))
		default:
			if _, err := netip.ParseAddr(addr); err != nil {
				if msgs := validation.IsDNS1123Subdomain(addr); len(msgs) > 0 {
					v.add(field.Invalid(ef.Child("address"), addr, "must be an IP address or a DNS name of the remote gateway: "+strings.Join(msgs, "; ")))
				} else if v.se.Resolution == rules.ResolutionStatic {
					v.add(field.Invalid(ef.Child("address"), addr, "resolution STATIC needs IP addresses; use resolution: DNS for a gateway host name"))
				}
			}
		}
		v.endpointPorts(ep, ef.Child("ports"), portNames)
		if labels, ok := ep["labels"].(map[string]any); !ok || labels[rules.ClusterLabel] == nil {
			unlabelled = append(unlabelled, i)
		}
	}
	if len(unlabelled) > 0 {
		// One warning per kind of problem, however many endpoints have it.
		v.warnings = append(v.warnings, fmt.Sprintf(WarnNoClusterLabel, indexList(unlabelled), rules.ClusterLabel))
	}
}

// indexList formats indices as "0,2,5", eliding past the first eight.
func indexList(idx []int) string {
	const shown = 8
	parts := make([]string, 0, shown+1)
	for i, n := range idx {
		if i == shown {
			parts = append(parts, fmt.Sprintf("… %d more", len(idx)-shown))
			break
		}
		parts = append(parts, strconv.Itoa(n))
	}
	return strings.Join(parts, ",")
}

func (v *validator) endpointPorts(ep map[string]any, fld *field.Path, portNames map[string]bool) {
	raw, present := ep["ports"]
	ports, ok := raw.(map[string]any)
	if present && raw != nil && !ok {
		v.add(field.TypeInvalid(fld, raw, "must be a map of port name to gateway port"))
		return
	}
	want := strconv.FormatUint(uint64(v.cfg.GatewayPort()), 10)
	for _, name := range slices.Sorted(maps.Keys(ports)) {
		n := ports[name]
		if !portNames[name] {
			v.add(field.NotFound(fld.Key(name), fmt.Sprintf("no port named %q in spec.ports; map only the ServiceEntry's port names", name)))
		}
		num, ok := rules.Integer(n)
		if !ok {
			v.add(field.TypeInvalid(fld.Key(name), n, "must be an integer port number, "+want))
			continue
		}
		v.add(rules.ValidateGatewayPort(num, v.cfg.AllowedGatewayPorts, fld.Key(name))...)
	}
	for _, name := range slices.Sorted(maps.Keys(portNames)) {
		if _, ok := ports[name]; !ok {
			v.add(field.Required(fld.Key(name), "every port must go through the remote gateway's SNI passthrough port; map "+name+" to "+want+" (or leave ports out and the mutating webhook fills them)"))
		}
	}
}

func (v *validator) workloadSelector() {
	if v.spec["workloadSelector"] != nil {
		v.add(field.Forbidden(v.fld.Child("workloadSelector"), "a remote service is reached through its cluster's gateway, not local workloads; use endpoints with the gateway address"))
	}
}
