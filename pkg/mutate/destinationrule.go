package mutate

import (
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// DestinationRuleResult says what DefaultDestinationRule filled in.
type DestinationRuleResult struct {
	TLSModes int // tls.mode set to ISTIO_MUTUAL where a tls was missing or had no mode
	SNIs     int // remote SNIs added, per port and per subset
}

// Changed reports whether anything was filled in.
func (r DestinationRuleResult) Changed() bool { return r.TLSModes+r.SNIs > 0 }

// DefaultDestinationRule fills what a DestinationRule of a `.global` host
// needs for its requests to land: trafficPolicy.tls.mode ISTIO_MUTUAL when
// unset and, when entry (the host's ServiceEntry) is known, a port-level
// setting with ISTIO_MUTUAL and the remote SNI for every port of the entry,
// on the rule and on every subset, where none is set. Port-level settings
// replace the level's tls for their port, so each carries the mode. Values
// that are present, even wrong ones, are left for validation to report.
func DefaultDestinationRule(obj *unstructured.Unstructured, entry *rules.Entry, suffix string) DestinationRuleResult {
	var res DestinationRuleResult
	spec, ok := obj.Object["spec"].(map[string]any)
	if !ok {
		return res
	}
	host, _ := spec["host"].(string)
	h, err := rules.ParseHost(host, suffix)
	if err != nil {
		return res
	}
	tp, ok := object(spec, "trafficPolicy")
	if !ok {
		return res
	}
	if tls, ok := object(tp, "tls"); ok && isUnset(tls, "mode") {
		tls["mode"] = rules.TLSModeIstioMutual
		res.TLSModes++
	}
	if entry == nil {
		return res
	}
	fill := func(tp map[string]any, subset string) {
		pls, ok := tp["portLevelSettings"].([]any)
		if !ok && tp["portLevelSettings"] != nil {
			return // not a list: validation reports it
		}
		for _, port := range entry.Ports {
			sni := rules.RemoteSNI(port, subset, h.Name, h.Namespace, entry.Domain())
			i := slices.IndexFunc(pls, func(raw any) bool {
				p, _ := raw.(map[string]any)
				pm, _ := p["port"].(map[string]any)
				n, ok := rules.Integer(pm["number"])
				return ok && n == int64(port)
			})
			if i < 0 {
				pls = append(pls, map[string]any{
					"port": map[string]any{"number": int64(port)},
					"tls":  map[string]any{"mode": rules.TLSModeIstioMutual, "sni": sni},
				})
				res.SNIs++
				continue
			}
			p, _ := pls[i].(map[string]any)
			tls, ok := object(p, "tls")
			if !ok {
				continue
			}
			if isUnset(tls, "mode") {
				tls["mode"] = rules.TLSModeIstioMutual
				res.TLSModes++
			}
			if isUnset(tls, "sni") {
				tls["sni"] = sni
				res.SNIs++
			}
		}
		if len(pls) > 0 {
			tp["portLevelSettings"] = pls
		}
	}
	fill(tp, "")
	subsets, _ := spec["subsets"].([]any)
	for _, raw := range subsets {
		s, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		name, _ := s["name"].(string)
		if name == "" {
			continue
		}
		if stp, ok := object(s, "trafficPolicy"); ok {
			fill(stp, name)
		}
	}
	return res
}

// object returns m[key] as an object, creating it when missing or null;
// ok is false when it holds something else (validation reports it).
func object(m map[string]any, key string) (map[string]any, bool) {
	switch v := m[key].(type) {
	case map[string]any:
		return v, true
	case nil:
		o := map[string]any{}
		m[key] = o
		return o, true
	}
	return nil, false
}
