package dns

import (
	"encoding/json"
	"fmt"
	"slices"
)

// EnsureStubDomain returns kube-dns' stubDomains value (JSON, "" when the
// key is absent) with the global zone forwarded to ip, keeping every other
// stub domain, and the global zone's nameservers before (none: nil).
// changed is false when it already was.
func EnsureStubDomain(value, ip string) (out string, previous []string, changed bool, err error) {
	stubs := map[string][]string{}
	if value != "" {
		if err := json.Unmarshal([]byte(value), &stubs); err != nil {
			return "", nil, false, fmt.Errorf("kube-dns stubDomains is not a JSON object of zone → [nameserver]: %w; fix the ConfigMap first", err)
		}
	}
	previous = stubs[Zone]
	if slices.Equal(previous, []string{ip}) {
		return value, previous, false, nil
	}
	stubs[Zone] = []string{ip}
	b, err := json.Marshal(stubs)
	if err != nil {
		return "", nil, false, err
	}
	return string(b), previous, true, nil
}

// RestoreStubDomain puts the global zone of a stubDomains value back to
// previous (or drops it when previous is empty) if it still points at ip.
// A global zone that is gone, or already as before (never written, or
// undone), is fine. ok is false when it points elsewhere (someone changed it since);
// the value is then returned unchanged.
func RestoreStubDomain(value, ip string, previous []string) (out string, ok bool, err error) {
	if value == "" {
		return value, true, nil
	}
	stubs := map[string][]string{}
	if err := json.Unmarshal([]byte(value), &stubs); err != nil {
		return "", false, fmt.Errorf("kube-dns stubDomains is not a JSON object: %w", err)
	}
	got, found := stubs[Zone]
	switch {
	case !found, len(previous) > 0 && slices.Equal(got, previous):
		return value, true, nil
	case !slices.Equal(got, []string{ip}):
		return value, false, nil
	}
	delete(stubs, Zone)
	if len(previous) > 0 {
		stubs[Zone] = previous
	}
	b, err := json.Marshal(stubs)
	if err != nil {
		return "", false, err
	}
	return string(b), true, nil
}

// StubDomainForwarding returns the nameservers of the global stub domain.
func StubDomainForwarding(value string) ([]string, error) {
	if value == "" {
		return nil, nil
	}
	stubs := map[string][]string{}
	if err := json.Unmarshal([]byte(value), &stubs); err != nil {
		return nil, fmt.Errorf("kube-dns stubDomains is not a JSON object: %w", err)
	}
	return stubs[Zone], nil
}
