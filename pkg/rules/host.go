package rules

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultSuffix is the DNS zone remote services are addressed under.
const DefaultSuffix = "global"

// Host is a remote service address of the `.global` model: Service Name in
// Namespace of another cluster, reached as `<name>.<namespace>.<suffix>`.
type Host struct {
	Name      string
	Namespace string
	Suffix    string
}

// String formats the host as `<name>.<namespace>.<suffix>`.
func (h Host) String() string {
	return FormatHost(h.Name, h.Namespace, h.Suffix)
}

// LocalHost is the in-cluster name the remote gateway rewrites the host to.
func (h Host) LocalHost() string {
	return LocalHostIn(h.Name, h.Namespace, "")
}

// FormatHost returns `<name>.<namespace>.<suffix>`; an empty suffix means
// DefaultSuffix.
func FormatHost(name, namespace, suffix string) string {
	if suffix == "" {
		suffix = DefaultSuffix
	}
	return name + "." + namespace + "." + suffix
}

// HostError explains why a string is not a valid remote host.
type HostError struct {
	Host   string
	Suffix string
	Reason string
}

func (e *HostError) Error() string {
	return fmt.Sprintf("host %q %s; %s", e.Host, e.Reason, HostFormHint(e.Suffix))
}

// HostFormHint says what a valid host looks like, for error messages.
func HostFormHint(suffix string) string {
	if suffix == "" {
		suffix = DefaultSuffix
	}
	return fmt.Sprintf("a remote host is <service>.<namespace>.%s with lower-case DNS labels, e.g. httpbin.bar.%s", suffix, suffix)
}

// ValidateSuffix checks a configured host suffix: one or more DNS labels,
// without leading or trailing dots.
func ValidateSuffix(suffix string) error {
	if suffix == "" {
		return fmt.Errorf("host suffix is empty; use a DNS zone such as %q", DefaultSuffix)
	}
	if msgs := validation.IsDNS1123Subdomain(suffix); len(msgs) > 0 {
		return fmt.Errorf("host suffix %q is not a DNS name: %s", suffix, strings.Join(msgs, "; "))
	}
	return nil
}

// HasSuffix reports whether host lies under the suffix zone, that is whether
// the `.global` rules apply to it. It is deliberately loose (any number of
// labels, any case, a trailing dot) so that malformed hosts are still caught
// by ParseHost instead of slipping past the rules.
func HasSuffix(host, suffix string) bool {
	if suffix == "" {
		suffix = DefaultSuffix
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	s := strings.ToLower(suffix)
	return h == s || strings.HasSuffix(h, "."+s)
}

// ParseHost parses `<name>.<namespace>.<suffix>`. The service name must be a
// DNS-1035 label (as a Kubernetes Service name) and the namespace a DNS-1123
// label; upper case, wildcards, empty labels, a trailing dot and extra
// labels are rejected with a HostError that says what a valid host is.
func ParseHost(host, suffix string) (Host, error) {
	if suffix == "" {
		suffix = DefaultSuffix
	}
	fail := func(format string, a ...any) (Host, error) {
		return Host{}, &HostError{Host: host, Suffix: suffix, Reason: fmt.Sprintf(format, a...)}
	}
	switch {
	case host == "":
		return fail("is empty")
	case strings.HasSuffix(host, "."):
		return fail("ends with a dot")
	case strings.HasPrefix(host, "."):
		return fail("starts with a dot")
	case strings.Contains(host, "*"):
		return fail("is a wildcard, which cannot name one remote service")
	case strings.ToLower(host) != host:
		return fail("has upper-case letters")
	}
	rest, ok := strings.CutSuffix(host, "."+suffix)
	if !ok {
		return fail("is not under .%s", suffix)
	}
	labels := strings.Split(rest, ".")
	switch {
	case len(labels) < 2:
		return fail("lacks the namespace label")
	case len(labels) > 2:
		return fail("has %d labels before .%s, want exactly 2 (service and namespace)", len(labels), suffix)
	}
	name, namespace := labels[0], labels[1]
	if name == "" || namespace == "" {
		return fail("has an empty label")
	}
	if msgs := validation.IsDNS1035Label(name); len(msgs) > 0 {
		return fail("has service name %q that is not a DNS-1035 label (%s)", name, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		return fail("has namespace %q that is not a DNS-1123 label (%s)", namespace, strings.Join(msgs, "; "))
	}
	return Host{Name: name, Namespace: namespace, Suffix: suffix}, nil
}
