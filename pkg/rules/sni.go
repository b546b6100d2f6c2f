package rules

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultClusterDomain is the DNS domain of a Kubernetes cluster unless its
// kubelets say otherwise (--cluster-domain).
const DefaultClusterDomain = "cluster.local"

// LocalHosts is the host pattern of a gateway server that passes mTLS
// through to any service of its own cluster (Istio's cross-network-gateway).
const LocalHosts = "*.local"

// LocalHostIn is the in-cluster name of Service name in namespace of a
// cluster whose DNS domain is domain ("" means DefaultClusterDomain).
func LocalHostIn(name, namespace, domain string) string {
	if domain == "" {
		domain = DefaultClusterDomain
	}
	return name + "." + namespace + ".svc." + domain
}

// SNI is the server name Istio's sidecars send with mTLS to a service
// (pilot's BuildDNSSrvSubsetKey): outbound_.<port>_.<subset>_.<host>. A
// gateway whose server is TLS AUTO_PASSTHROUGH routes such a connection to
// the service of that host, port and subset in its own cluster, so a caller
// reaches a remote service only when it sends that service's in-cluster
// host, never its `.global` one: no service of the remote cluster is called
// `*.global`, so the remote gateway has no filter chain for such a name.
type SNI struct {
	Port   uint32
	Subset string // "" for the whole service
	Host   string // e.g. httpbin.bar.svc.cluster.local
}

// RemoteSNI is the SNI a caller must send to reach port of Service name in
// namespace of a remote cluster with DNS domain domain, through that
// cluster's AUTO_PASSTHROUGH gateway; subset "" means every endpoint.
func RemoteSNI(port uint32, subset, name, namespace, domain string) string {
	return SNI{Port: port, Subset: subset, Host: LocalHostIn(name, namespace, domain)}.String()
}

// String formats the SNI as Istio does.
func (s SNI) String() string {
	return "outbound_." + strconv.FormatUint(uint64(s.Port), 10) + "_." + s.Subset + "_." + s.Host
}

// ParseSNI reads an SNI of Istio's form back; the error says what the form
// is.
func ParseSNI(s string) (SNI, error) {
	fail := func(why string) (SNI, error) {
		return SNI{}, fmt.Errorf("SNI %q %s; Istio's form is outbound_.<port>_.<subset or empty>_.<host>, e.g. %s", s, why, RemoteSNI(8000, "", "httpbin", "bar", ""))
	}
	rest, ok := strings.CutPrefix(s, "outbound_.")
	if !ok {
		return fail("does not start with outbound_.")
	}
	portStr, rest, ok := strings.Cut(rest, "_.")
	if !ok {
		return fail("has no port")
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return fail(fmt.Sprintf("has port %q, not a number from 1 to 65535", portStr))
	}
	subset, host, ok := strings.Cut(rest, "_.")
	if !ok {
		return fail("has no subset part")
	}
	if msgs := validation.IsDNS1123Subdomain(host); len(msgs) > 0 {
		return fail(fmt.Sprintf("has host %q that is not a DNS name", host))
	}
	return SNI{Port: uint32(port), Subset: subset, Host: host}, nil
}

// ServiceOf splits a host of the form <name>.<namespace>.svc.<domain> into
// its parts; ok is false for any other form.
func ServiceOf(host string) (name, namespace, domain string, ok bool) {
	labels := strings.SplitN(host, ".", 4)
	if len(labels) != 4 || labels[2] != "svc" || labels[0] == "" || labels[1] == "" || labels[3] == "" {
		return "", "", "", false
	}
	return labels[0], labels[1], labels[3], true
}

// ValidateClusterDomain checks a cluster DNS domain such as cluster.local.
func ValidateClusterDomain(domain string) error {
	if msgs := validation.IsDNS1123Subdomain(domain); len(msgs) > 0 {
		return fmt.Errorf("cluster domain %q is not a DNS name (%s); it is the kubelets' --cluster-domain, %s unless set otherwise", domain, strings.Join(msgs, "; "), DefaultClusterDomain)
	}
	return nil
}

// MatchesGatewayHost reports whether a gateway server host pattern (as in
// Gateway spec.servers[].hosts: "*", "*.local", "ns/*.local", an exact
// name) covers host of a service in hostNamespace, the way pilot matches
// services to an AUTO_PASSTHROUGH server. A namespace prefix restricts the
// services to that namespace ("." is the Gateway's own, "*" any).
func MatchesGatewayHost(pattern, gatewayNamespace, host, hostNamespace string) bool {
	if ns, h, ok := strings.Cut(pattern, "/"); ok {
		if ns == "." {
			ns = gatewayNamespace
		}
		if ns != "*" && ns != hostNamespace {
			return false
		}
		pattern = h
	}
	switch {
	case pattern == "*":
		return true
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(host, pattern[1:])
	}
	return pattern == host
}
