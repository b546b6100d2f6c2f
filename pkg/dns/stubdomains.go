package dns

import (
	"encoding/json"
	"fmt"
	"slices"
)

// EnsureStubDomain returns kube-dns' stubDomains value (JSON, "" when the
// key is absent) with the global zone forwarded to ip, keeping every other
// stub domain. changed is false when it already was.
func EnsureStubDomain(value, ip string) (out string, changed bool, err error) {
	stubs := map[string][]string{}
	if value != "" {
		if err := json.Unmarshal([]byte(value), &stubs); err != nil {
			return "", false, fmt.Errorf("kube-dns stubDomains is not a JSON object of zone → [nameserver]: %w; fix the ConfigMap first", err)
		}
	}
	if slices.Equal(stubs[Zone], []string{ip}) {
		return value, false, nil
	}
	stubs[Zone] = []string{ip}
	b, err := json.Marshal(stubs)
	if err != nil {
		return "", false, err
	}
	return string(b), true, nil
}

// RemoveStubDomain drops the global zone from a stubDomains value if it
// still points at ip. ok is false when it points elsewhere (someone changed
// it since); the value is then returned unchanged.
func RemoveStubDomain(value, ip string) (out string, ok bool, err error) {
	if value == "" {
		return value, true, nil
	}
	stubs := map[string][]string{}
	if err := json.Unmarshal([]byte(value), &stubs); err != nil {
		return "", false, fmt.Errorf("kube-dns stubDomains is not a JSON object: %w", err)
	}
	got, found := stubs[Zone]
	if !found {
		return value, true, nil
	}
	if !slices.Equal(got, []string{ip}) {
		return value, false, nil
	}
	delete(stubs, Zone)
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
