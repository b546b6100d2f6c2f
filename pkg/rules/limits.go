package rules

import (
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Size limits of the objects the `.global` rules apply to. An admission
// handler checks them before it does anything else, so that the work spent
// on one request is bounded by what a legitimate object could need: a
// `.global` entry maps every port on every endpoint, and Istio caps an
// endpoint's port map at 128, so no entry the rules admit has more ports;
// it has one endpoint per source cluster.
const (
	MaxHosts          = 16
	MaxAddresses      = 16
	MaxPorts          = 128
	MaxEndpoints      = 256
	MaxEndpointPorts  = 128
	MaxLabels         = 64
	MaxSubsets        = 256
	MaxPortSettings   = 128
	MaxExportToValues = 256
)

// CheckServiceEntrySize reports the lists and maps of a ServiceEntry spec
// that are longer than the limits. It reads only lengths, never the items'
// contents beyond the endpoint maps it counts, so its cost does not depend
// on the object's size.
func CheckServiceEntrySize(spec map[string]any, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, tooMany(spec["hosts"], MaxHosts, fld.Child("hosts"))...)
	errs = append(errs, tooMany(spec["addresses"], MaxAddresses, fld.Child("addresses"))...)
	errs = append(errs, tooMany(spec["ports"], MaxPorts, fld.Child("ports"))...)
	errs = append(errs, tooMany(spec["exportTo"], MaxExportToValues, fld.Child("exportTo"))...)
	eps, _ := spec["endpoints"].([]any)
	if len(eps) > MaxEndpoints {
		return append(errs, field.TooMany(fld.Child("endpoints"), len(eps), MaxEndpoints))
	}
	for i, raw := range eps {
		ep, _ := raw.(map[string]any)
		ef := fld.Child("endpoints").Index(i)
		errs = append(errs, tooMany(ep["ports"], MaxEndpointPorts, ef.Child("ports"))...)
		errs = append(errs, tooMany(ep["labels"], MaxLabels, ef.Child("labels"))...)
	}
	return errs
}

// CheckDestinationRuleSize is CheckServiceEntrySize for a DestinationRule
// spec: subsets, port-level settings (of the rule and of each subset) and
// subset labels.
func CheckDestinationRuleSize(spec map[string]any, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, tooMany(spec["exportTo"], MaxExportToValues, fld.Child("exportTo"))...)
	tp, _ := spec["trafficPolicy"].(map[string]any)
	errs = append(errs, tooMany(tp["portLevelSettings"], MaxPortSettings, fld.Child("trafficPolicy", "portLevelSettings"))...)
	subsets, _ := spec["subsets"].([]any)
	if len(subsets) > MaxSubsets {
		return append(errs, field.TooMany(fld.Child("subsets"), len(subsets), MaxSubsets))
	}
	for i, raw := range subsets {
		s, _ := raw.(map[string]any)
		sf := fld.Child("subsets").Index(i)
		errs = append(errs, tooMany(s["labels"], MaxLabels, sf.Child("labels"))...)
		stp, _ := s["trafficPolicy"].(map[string]any)
		errs = append(errs, tooMany(stp["portLevelSettings"], MaxPortSettings, sf.Child("trafficPolicy", "portLevelSettings"))...)
	}
	return errs
}

func tooMany(v any, limit int, fld *field.Path) field.ErrorList {
	n := 0
	switch t := v.(type) {
	case []any:
		n = len(t)
	case map[string]any:
		n = len(t)
	}
	if n <= limit {
		return nil
	}
	e := field.TooMany(fld, n, limit)
	e.Detail += "; no remote service needs more, and the webhook refuses it before doing any work on it"
	return field.ErrorList{e}
}
