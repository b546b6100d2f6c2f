package rules

import "strings"

// Protocols Istio accepts on a ServiceEntry port, upper case as Istio
// writes them.
var protocols = []string{"HTTP", "HTTPS", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-WEB", "TCP", "TLS", "UDP", "MONGO", "MYSQL", "REDIS"}

// IsProtocol reports whether p (any case) is a protocol Istio accepts.
func IsProtocol(p string) bool {
	_, ok := parseProtocol(p)
	return ok
}

// Protocols lists the protocols Istio accepts, for error messages.
func Protocols() []string { return append([]string(nil), protocols...) }

func parseProtocol(p string) (string, bool) {
	u := strings.ToUpper(p)
	for _, q := range protocols {
		if u == q {
			return q, true
		}
	}
	return "", false
}

// ProtocolFor derives a port's Istio protocol the way Istio does for a
// Kubernetes Service port: appProtocol when set (kubernetes.io/h2c → HTTP2),
// else the port name's prefix before the first "-" (http, http-web, grpc…),
// else TCP.
func ProtocolFor(portName, appProtocol string) string {
	switch ap := strings.ToLower(appProtocol); ap {
	case "":
	case "kubernetes.io/h2c":
		return "HTTP2"
	case "kubernetes.io/ws", "kubernetes.io/wss":
		return "HTTP"
	default:
		if p, ok := parseProtocol(ap); ok {
			return p
		}
	}
	// grpc-web holds the separator itself, so it is matched before the
	// prefix is cut.
	if len(portName) >= len("grpc-web") && strings.EqualFold(portName[:len("grpc-web")], "grpc-web") {
		return "GRPC-WEB"
	}
	prefix, _, _ := strings.Cut(portName, "-")
	if p, ok := parseProtocol(prefix); ok {
		return p
	}
	return "TCP"
}
