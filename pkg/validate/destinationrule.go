package validate

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// DestinationRuleKind is the GroupKind DestinationRule errors are reported
// against.
var DestinationRuleKind = schema.GroupKind{Group: rules.IstioGroup, Kind: rules.KindDestinationRule}

// Warnings of the DestinationRule rules.
const (
	WarnNoEntry = "spec.host: no ServiceEntry for %s is visible in namespace %s yet; its subsets and SNIs are checked (and missing SNIs filled) once it exists — create the entry first, e.g. with kubectl mesh export"
	WarnNoSNI   = "%s: no tls.sni for port %d; without the remote SNI %s the source gateway has no route for the request"
)

// DestinationRuleHost returns the `.global` host of a DestinationRule, or
// "" when its host is not under the suffix.
func DestinationRuleHost(obj *unstructured.Unstructured, suffix string) string {
	if obj == nil {
		return ""
	}
	spec, _ := obj.Object["spec"].(map[string]any)
	h, _ := spec["host"].(string)
	if !rules.HasSuffix(h, suffix) {
		return ""
	}
	return h
}

// ValidateDestinationRule checks a DestinationRule of a `.global` host:
// every tls it sets is ISTIO_MUTUAL, every SNI it sets is the remote form
// for its port and subset, and, when entry (the host's ServiceEntry) is
// known, every subset selects labels that an endpoint of the entry carries.
// A nil entry is reported as a warning: the rule may be applied before its
// entry.
func ValidateDestinationRule(obj *unstructured.Unstructured, entry *rules.Entry, policy rules.Policy) (field.ErrorList, []string) { //nolint:revive // named like apimachinery validators
	host := DestinationRuleHost(obj, policy.Suffix)
	if host == "" {
		return nil, nil
	}
	fld := field.NewPath("spec")
	spec, ok := obj.Object["spec"].(map[string]any)
	if !ok {
		return field.ErrorList{field.Invalid(fld, obj.Object["spec"], "must be an object")}, nil
	}
	if errs := rules.CheckDestinationRuleSize(spec, fld); len(errs) > 0 {
		return errs, nil
	}
	h, err := rules.ParseHost(host, policy.Suffix)
	if err != nil {
		return field.ErrorList{field.Invalid(fld.Child("host"), host, err.Error())}, nil
	}
	v := &drValidator{host: h, entry: entry}
	if entry == nil {
		v.warnings = append(v.warnings, fmt.Sprintf(WarnNoEntry, host, obj.GetNamespace()))
	}
	tp, _ := spec["trafficPolicy"].(map[string]any)
	tpf := fld.Child("trafficPolicy")
	if tls, _ := tp["tls"].(map[string]any); tls == nil {
		v.errs = append(v.errs, field.Required(tpf.Child("tls", "mode"), "a .global host is reached with mTLS through the remote gateway; set trafficPolicy.tls.mode: ISTIO_MUTUAL (the mutating webhook fills it when it is missing)"))
	}
	v.policy(tp, tpf, "")
	subsets, _ := spec["subsets"].([]any)
	for i, raw := range subsets {
		sf := fld.Child("subsets").Index(i)
		s, ok := raw.(map[string]any)
		if !ok {
			v.errs = append(v.errs, field.TypeInvalid(sf, raw, "must be an object with name and labels"))
			continue
		}
		name, _ := s["name"].(string)
		v.subsetLabels(s, sf.Child("labels"), name)
		stp, _ := s["trafficPolicy"].(map[string]any)
		v.policy(stp, sf.Child("trafficPolicy"), name)
	}
	v.missingSNIs(tp, tpf, "")
	return v.errs, v.warnings
}

type drValidator struct {
	host     rules.Host
	entry    *rules.Entry
	errs     field.ErrorList
	warnings []string
}

// policy checks the tls of a traffic policy and of its port-level
// settings.
func (v *drValidator) policy(tp map[string]any, fld *field.Path, subset string) {
	if tp == nil {
		return
	}
	if tls, ok := tp["tls"].(map[string]any); ok {
		v.tls(tls, fld.Child("tls"), 0, subset)
	}
	pls, _ := tp["portLevelSettings"].([]any)
	for i, raw := range pls {
		pf := fld.Child("portLevelSettings").Index(i)
		p, _ := raw.(map[string]any)
		tls, ok := p["tls"].(map[string]any)
		if !ok {
			continue
		}
		port, _ := p["port"].(map[string]any)
		n, ok := rules.Integer(port["number"])
		if !ok || n < 1 || n > 65535 {
			v.errs = append(v.errs, field.Required(pf.Child("port", "number"), "the port this setting's SNI is for"))
			continue
		}
		v.tls(tls, pf.Child("tls"), uint32(n), subset) //nolint:gosec // checked to be a port number
	}
}

// tls checks one tls setting; port 0 means the rule or subset level, where
// the SNI may name any port of the entry.
func (v *drValidator) tls(tls map[string]any, fld *field.Path, port uint32, subset string) {
	if mode, _ := tls["mode"].(string); mode != rules.TLSModeIstioMutual {
		v.errs = append(v.errs, field.NotSupported(fld.Child("mode"), tls["mode"], []string{rules.TLSModeIstioMutual}))
	}
	raw, ok := tls["sni"]
	if !ok || raw == nil || raw == "" {
		return
	}
	sniFld := fld.Child("sni")
	s, _ := raw.(string)
	sni, err := rules.ParseSNI(s)
	if err != nil {
		v.errs = append(v.errs, field.Invalid(sniFld, raw, err.Error()))
		return
	}
	name, ns, domain, ok := rules.ServiceOf(sni.Host)
	wantDomain := rules.DefaultClusterDomain
	if v.entry != nil {
		wantDomain = v.entry.Domain()
	} else if ok {
		wantDomain = domain
	}
	wantPort := port
	if wantPort == 0 {
		wantPort = sni.Port
		if v.entry != nil && !slices.Contains(v.entry.Ports, sni.Port) {
			v.errs = append(v.errs, field.Invalid(sniFld, s, fmt.Sprintf("port %d is not a port of ServiceEntry %s (%s)", sni.Port, v.entry, portList(v.entry.Ports))))
			return
		}
	}
	want := rules.RemoteSNI(wantPort, subset, v.host.Name, v.host.Namespace, wantDomain)
	if !ok || name != v.host.Name || ns != v.host.Namespace || domain != wantDomain || sni.Port != wantPort || sni.Subset != subset {
		v.errs = append(v.errs, field.Invalid(sniFld, s, "must be the remote service's own SNI, "+want+": the source gateway routes by the in-cluster name, port and subset"))
	}
}

func portList(ports []uint32) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = fmt.Sprint(p)
	}
	return "ports " + strings.Join(s, ", ")
}

// subsetLabels checks that a subset selects endpoint labels of the entry.
// The seed mistake is selecting pod labels such as version: v2: no gateway
// endpoint carries the key at all, so Istio builds no cluster for the
// subset; that is denied. A key some endpoint carries with another value
// (cluster: cluster3 while the entry lists cluster2 only) is a warning:
// kubectl mesh export writes a new source's rule just before the entry
// that adds its endpoint.
func (v *drValidator) subsetLabels(s map[string]any, fld *field.Path, name string) {
	raw, _ := s["labels"].(map[string]any)
	if len(raw) == 0 || v.entry == nil {
		return
	}
	sel := make(map[string]string, len(raw))
	for k, val := range raw {
		sel[k], _ = val.(string)
	}
	if v.entry.Selects(sel) {
		return
	}
	use := "cluster: <source cluster>"
	if cl := v.entry.ClusterLabels(); len(cl) > 0 {
		use = rules.ClusterLabel + ": " + strings.Join(cl, " or "+rules.ClusterLabel+": ")
	}
	var unknown []string
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		if !v.entry.Carries(k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		v.warnings = append(v.warnings, fmt.Sprintf("%s: no endpoint of ServiceEntry %s carries %s yet; subset %q routes nowhere until one does (endpoints now: %s)",
			fld, v.entry, rules.FormatLabels(sel), name, use))
		return
	}
	v.errs = append(v.errs, field.Invalid(fld, rules.FormatLabels(sel), fmt.Sprintf(
		"no endpoint of ServiceEntry %s has the label %s, so Istio builds no cluster for subset %q; a .global subset selects the endpoints' %s label (use %s): versions are mapped to pods by the source cluster's own DestinationRule for %s, and the subset name %q travels there in the SNI",
		v.entry, strings.Join(unknown, ", "), name, rules.ClusterLabel, use, rules.LocalHostIn(v.host.Name, v.host.Namespace, v.entry.Domain()), name)))
}

// missingSNIs warns, once, about the entry's ports that the rule's own
// level carries no SNI for.
func (v *drValidator) missingSNIs(tp map[string]any, fld *field.Path, subset string) {
	if v.entry == nil {
		return
	}
	have := map[uint32]bool{}
	if tls, ok := tp["tls"].(map[string]any); ok {
		if sni, err := rules.ParseSNI(fmt.Sprint(tls["sni"])); err == nil {
			have[sni.Port] = true
		}
	}
	pls, _ := tp["portLevelSettings"].([]any)
	for _, raw := range pls {
		p, _ := raw.(map[string]any)
		tls, _ := p["tls"].(map[string]any)
		port, _ := p["port"].(map[string]any)
		if n, ok := rules.Integer(port["number"]); ok && tls["sni"] != nil && tls["sni"] != "" {
			have[uint32(n)] = true //nolint:gosec // a port number
		}
	}
	var missing []string
	for _, p := range v.entry.Ports {
		if !have[p] {
			missing = append(missing, fmt.Sprintf(WarnNoSNI, fld.Child("portLevelSettings"), p, rules.RemoteSNI(p, subset, v.host.Name, v.host.Namespace, v.entry.Domain())))
		}
	}
	if len(missing) > 0 {
		v.warnings = append(v.warnings, strings.Join(missing, "; "))
	}
}
