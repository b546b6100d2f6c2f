package builders

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// AnnotationLocalityPolicy holds, on a DestinationRule, the locality policy
// `kubectl mesh route` set (JSON), so that a later export, which rewrites
// the rule, keeps it.
const AnnotationLocalityPolicy = "mesh.kubectl-mesh.io/locality-policy"

// LocalityPolicy is Istio's locality load balancing for a host, always with
// the outlier detection without which Envoy never fails over: it is what
// turns locality priorities on.
type LocalityPolicy struct {
	// Failover lists region pairs: traffic of From fails over to To.
	Failover []Failover `json:"failover,omitempty"`
	// Distribute sets, per origin locality, the share of each locality.
	Distribute []Distribute `json:"distribute,omitempty"`
	Outlier    Outlier      `json:"outlierDetection"`
}

// Failover is one failover pair of regions.
type Failover struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Distribute is the traffic split for callers in From (region/zone/subzone,
// "*" allowed): locality → weight, adding up to 100.
type Distribute struct {
	From string            `json:"from"`
	To   map[string]uint32 `json:"to"`
}

// Outlier is the outlier detection the seed guide uses.
type Outlier struct {
	Consecutive5xxErrors uint32        `json:"consecutive5xxErrors"`
	Interval             time.Duration `json:"interval"`
	BaseEjectionTime     time.Duration `json:"baseEjectionTime"`
}

// DefaultOutlier is the seed guide's outlier detection: eject an endpoint
// after one 5xx, checked every second, for a minute.
var DefaultOutlier = Outlier{Consecutive5xxErrors: 1, Interval: time.Second, BaseEjectionTime: time.Minute}

// Validate checks what Istio would refuse or ignore: failover needs
// outlier detection, distribution weights add up to 100 per origin.
func (p LocalityPolicy) Validate() error {
	if len(p.Failover) > 0 && len(p.Distribute) > 0 {
		return fmt.Errorf("a locality policy has either failover or distribute, not both (Istio refuses the pair)")
	}
	if len(p.Failover) == 0 && len(p.Distribute) == 0 {
		return fmt.Errorf("a locality policy needs failover or distribute")
	}
	if p.Outlier.Consecutive5xxErrors == 0 || p.Outlier.Interval <= 0 || p.Outlier.BaseEjectionTime <= 0 {
		return fmt.Errorf("locality load balancing without outlier detection never fails over: consecutive 5xx errors, interval and base ejection time must be positive")
	}
	seen := map[string]bool{}
	for _, f := range p.Failover {
		switch {
		case f.From == "" || f.To == "":
			return fmt.Errorf("failover %q=%q: both regions are needed", f.From, f.To)
		case f.From == f.To:
			return fmt.Errorf("failover %s=%s: a region cannot fail over to itself", f.From, f.To)
		case seen[f.From]:
			return fmt.Errorf("failover: region %s is listed twice as the origin", f.From)
		case strings.Contains(f.From, "/") || strings.Contains(f.To, "/"):
			return fmt.Errorf("failover %s=%s: failover pairs name regions, not zones", f.From, f.To)
		}
		seen[f.From] = true
	}
	for _, d := range p.Distribute {
		var sum uint32
		for _, w := range d.To {
			sum += w
		}
		if sum != 100 {
			return fmt.Errorf("distribute from %s: weights add up to %d, want 100", d.From, sum)
		}
	}
	return nil
}

// trafficPolicy is the policy's part of a DestinationRule traffic policy.
// Port-level settings replace the rule's load balancer and outlier
// detection for their port (they do not inherit), so every level carries
// it.
func (p *LocalityPolicy) trafficPolicy() map[string]any {
	if p == nil {
		return nil
	}
	lb := map[string]any{}
	if len(p.Failover) > 0 {
		var fs []any
		for _, f := range p.Failover {
			fs = append(fs, map[string]any{"from": f.From, "to": f.To})
		}
		lb["failover"] = fs
	}
	if len(p.Distribute) > 0 {
		var ds []any
		for _, d := range p.Distribute {
			to := map[string]any{}
			for _, k := range slices.Sorted(maps.Keys(d.To)) {
				to[k] = int64(d.To[k])
			}
			ds = append(ds, map[string]any{"from": d.From, "to": to})
		}
		lb["distribute"] = ds
	}
	return map[string]any{
		"loadBalancer": map[string]any{"localityLbSetting": lb},
		"outlierDetection": map[string]any{
			"consecutive5xxErrors": int64(p.Outlier.Consecutive5xxErrors),
			"interval":             durationString(p.Outlier.Interval),
			"baseEjectionTime":     durationString(p.Outlier.BaseEjectionTime),
		},
	}
}

// durationString writes a duration the way Istio's examples do (1s, 1m,
// 1h) rather than Go's 1m0s; both parse, the short form reads better.
func durationString(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

// withLocality adds the policy to a traffic policy map (nil: unchanged).
func withLocality(policy map[string]any, p *LocalityPolicy) map[string]any {
	for k, v := range p.trafficPolicy() {
		policy[k] = v
	}
	return policy
}

// annotate records the policy on a rule's annotations.
func annotate(u *unstructured.Unstructured, p *LocalityPolicy) {
	if p == nil {
		return
	}
	b, err := json.Marshal(p)
	if err != nil {
		return // a LocalityPolicy always marshals
	}
	a := u.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationLocalityPolicy] = string(b)
	u.SetAnnotations(a)
}

// LocalityPolicyOf reads the policy route recorded on a rule; nil when
// there is none or it does not parse (a hand-edited annotation loses only
// the policy, which status then reports as missing).
func LocalityPolicyOf(dr *unstructured.Unstructured) *LocalityPolicy {
	s := AnnotationOf(dr, AnnotationLocalityPolicy)
	if s == "" {
		return nil
	}
	var p LocalityPolicy
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil
	}
	return &p
}
