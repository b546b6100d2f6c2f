package routing

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
)

// Weight is one version and its share of the traffic, in percent.
type Weight struct {
	Version string
	Weight  uint32
}

// ParseWeights parses --to: VERSION=WEIGHT items whose weights add up to
// 100; a single VERSION alone takes all the traffic.
func ParseWeights(items []string) ([]Weight, error) {
	const hint = "use --to VERSION=WEIGHT,…, e.g. --to v2=70,v3=30, or --to v2 for all of it"
	if len(items) == 0 {
		return nil, fmt.Errorf("--to is empty; %s", hint)
	}
	var out []Weight
	var sum uint64
	for _, item := range items {
		v, w, hasWeight := strings.Cut(item, "=")
		if v == "" {
			return nil, fmt.Errorf("--to %q: a version is missing; %s", item, hint)
		}
		if slices.ContainsFunc(out, func(x Weight) bool { return x.Version == v }) {
			return nil, fmt.Errorf("--to names version %s twice", v)
		}
		weight := uint64(100)
		if hasWeight {
			n, err := strconv.ParseUint(w, 10, 32)
			if err != nil || n > 100 {
				return nil, fmt.Errorf("--to %q: weight %q is not a number from 0 to 100; %s", item, w, hint)
			}
			weight = n
		} else if len(items) > 1 {
			return nil, fmt.Errorf("--to %q: with several versions each needs a weight; %s", item, hint)
		}
		sum += weight
		out = append(out, Weight{Version: v, Weight: uint32(weight)})
	}
	if sum != 100 {
		return nil, fmt.Errorf("--to %s: weights add up to %d, want 100", strings.Join(items, ","), sum)
	}
	return out, nil
}

// Match is one --when condition of a route rule.
type Match struct {
	// Header is the request header matched; "" for a URI match.
	Header string
	// Op is exact, prefix or regex (headers), prefix (URI).
	Op    string
	Value string
}

// Match operators, as Istio's StringMatch spells them.
const (
	OpExact  = "exact"
	OpPrefix = "prefix"
	OpRegex  = "regex"
)

// ParseWhen parses --when: header:NAME=VALUE (exact), prefix:NAME=VALUE,
// regex:NAME=VALUE (a header's prefix or RE2 regex), uri-prefix:/PATH.
func ParseWhen(s string) (Match, error) {
	const hint = "use header:NAME=VALUE, prefix:NAME=VALUE, regex:NAME=VALUE or uri-prefix:/PATH, e.g. --when header:end-user=jason"
	kind, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return Match{}, fmt.Errorf("--when %q: %s", s, hint)
	}
	if kind == "uri-prefix" {
		if !strings.HasPrefix(rest, "/") {
			return Match{}, fmt.Errorf("--when %q: a URI prefix starts with /; %s", s, hint)
		}
		return Match{Op: OpPrefix, Value: rest}, nil
	}
	op := map[string]string{"header": OpExact, "prefix": OpPrefix, "regex": OpRegex}[kind]
	if op == "" {
		return Match{}, fmt.Errorf("--when %q: unknown kind %q; %s", s, kind, hint)
	}
	name, value, ok := strings.Cut(rest, "=")
	if !ok || name == "" || value == "" {
		return Match{}, fmt.Errorf("--when %q: a header name and a value are needed; %s", s, hint)
	}
	if name != strings.ToLower(name) || strings.ContainsAny(name, " :") {
		return Match{}, fmt.Errorf("--when %q: header %q must be lower case without spaces or colons (Istio matches header names in lower case)", s, name)
	}
	if op == OpRegex {
		if _, err := regexp.Compile(value); err != nil {
			return Match{}, fmt.Errorf("--when %q: %w", s, err)
		}
	}
	return Match{Header: name, Op: op, Value: value}, nil
}

// String is the --when form, also the rule's name in the VirtualService, so
// that running route again with the same match replaces that rule.
func (m Match) String() string {
	if m.Header == "" {
		return "uri-prefix:" + m.Value
	}
	kind := map[string]string{OpExact: "header", OpPrefix: "prefix", OpRegex: "regex"}[m.Op]
	return kind + ":" + m.Header + "=" + m.Value
}

// istio is the match as an HTTPMatchRequest.
func (m Match) istio() map[string]any {
	if m.Header == "" {
		return map[string]any{"uri": map[string]any{OpPrefix: m.Value}}
	}
	return map[string]any{"headers": map[string]any{m.Header: map[string]any{m.Op: m.Value}}}
}

// ParseFailover parses --failover FROM=TO,… region pairs.
func ParseFailover(items []string) ([]builders.Failover, error) {
	var out []builders.Failover
	for _, item := range items {
		from, to, ok := strings.Cut(item, "=")
		if !ok || from == "" || to == "" {
			return nil, fmt.Errorf("--failover %q: use FROM=TO region pairs, e.g. --failover region1=region2", item)
		}
		out = append(out, builders.Failover{From: from, To: to})
	}
	return out, nil
}

// ParseDistribute parses --distribute 'FROM=TO:WEIGHT,TO:WEIGHT;FROM=…':
// for callers in locality FROM, the share of traffic each locality TO gets
// (region/zone/subzone, "*" allowed), adding up to 100 per FROM.
func ParseDistribute(s string) ([]builders.Distribute, error) {
	const hint = "use 'FROM=TO:WEIGHT,TO:WEIGHT;FROM=…', e.g. --distribute 'region1/*=region1/*:80,region2/*:20'"
	var out []builders.Distribute
	for _, group := range strings.Split(s, ";") {
		if group = strings.TrimSpace(group); group == "" {
			continue
		}
		from, targets, ok := strings.Cut(group, "=")
		if !ok || from == "" || targets == "" {
			return nil, fmt.Errorf("--distribute %q: %s", group, hint)
		}
		d := builders.Distribute{From: from, To: map[string]uint32{}}
		var sum uint64
		for _, t := range strings.Split(targets, ",") {
			loc, w, ok := strings.Cut(t, ":")
			n, err := strconv.ParseUint(w, 10, 32)
			if !ok || loc == "" || err != nil || n > 100 {
				return nil, fmt.Errorf("--distribute %q: %q is not LOCALITY:WEIGHT with a weight from 0 to 100; %s", group, t, hint)
			}
			if _, dup := d.To[loc]; dup {
				return nil, fmt.Errorf("--distribute %q: locality %s appears twice", group, loc)
			}
			d.To[loc] = uint32(n)
			sum += n
		}
		if sum != 100 {
			return nil, fmt.Errorf("--distribute %q: weights from %s add up to %d, want 100", group, from, sum)
		}
		if slices.ContainsFunc(out, func(x builders.Distribute) bool { return x.From == from }) {
			return nil, fmt.Errorf("--distribute: %s is given twice", from)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--distribute is empty; %s", hint)
	}
	return out, nil
}
