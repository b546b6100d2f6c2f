// Package gateway finds the gateway other clusters use to reach a cluster's
// services on its SNI-aware AUTO_PASSTHROUGH port (15443) and its address:
// Istio's east-west gateway (istio-eastwestgateway) when the cluster has
// one, else the ingress gateway; the LoadBalancer IP, else the LoadBalancer
// host name, else a node address and the node port mapped to 15443. It also
// parses the --gateway-address override. `kubectl mesh export`, `link` and
// `status` all use it, so they agree on which gateway passes `*.local`
// through and where it is.
package gateway

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// The gateway Services of a stock Istio installation, in the order
// Discover prefers them: the east-west gateway of Istio's multi-network
// install exists to pass mesh traffic between clusters, the ingress gateway
// does it in older and smaller installations.
const (
	EastWestService  = "istio-eastwestgateway"
	DefaultService   = "istio-ingressgateway"
	DefaultNamespace = rules.IstioSystemNamespace
)

// Options say which Service is the gateway; an empty Service means the
// east-west gateway when it exists, else the ingress gateway.
type Options struct {
	Service   string
	Namespace string
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	return o
}

// Mode says how an Address was found.
type Mode string

// The ways a gateway address is found, in the order Discover tries them.
const (
	ModeLoadBalancerIP       Mode = "LoadBalancerIP"
	ModeLoadBalancerHostname Mode = "LoadBalancerHostname"
	ModeNodePort             Mode = "NodePort"
	ModeOverride             Mode = "Override"
)

// Address is where remote clusters reach a gateway's port 15443.
type Address struct {
	Host     string // IP or DNS name
	Port     uint32 // 15443, or the node port mapped to 15443 in NodePort mode
	Mode     Mode
	Warnings []string
	// Service is the gateway Service (namespace/name) the address belongs
	// to, and Selector its pod selector, which the Gateway passing
	// `*.local` through must match; both are empty for an override.
	Service  string
	Selector map[string]string
}

// String is HOST:PORT, with IPv6 hosts in brackets.
func (a Address) String() string {
	return net.JoinHostPort(a.Host, strconv.FormatUint(uint64(a.Port), 10))
}

// IsIP reports whether Host is an IP address rather than a DNS name.
func (a Address) IsIP() bool {
	_, err := netip.ParseAddr(a.Host)
	return err == nil
}

// PortWarning is the warning for a gateway port other than 15443: legal for
// Istio, but mesh-webhook denies such endpoints unless it is told to allow
// that port.
func PortWarning(port uint32) string {
	return fmt.Sprintf("remote clusters reach this gateway on port %d instead of %d; mesh-webhook in the target clusters must allow it: allowedGatewayPorts: \"%d,%d\" in ConfigMap mesh-system/mesh-webhook-config", port, rules.GatewayPort, rules.GatewayPort, port)
}

// NodePortWarning is the warning of NodePort mode.
func NodePortWarning(port uint32) string {
	return "the gateway has no load balancer address (NodePort mode): " + PortWarning(port)
}

const overrideHint = "pass --gateway-address HOST[:PORT] to set the address by hand"

// Discover reads the gateway Service (and, in NodePort mode, the Nodes) and
// returns the address remote clusters must use. Errors name the Service and
// say how to fix it.
func Discover(ctx context.Context, kube kubernetes.Interface, opts Options) (Address, error) {
	svc, err := Service(ctx, kube, opts)
	if err != nil {
		return Address{}, err
	}
	ref := svc.Namespace + "/" + svc.Name
	var nodes []corev1.Node
	if needsNodes(svc) {
		list, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return Address{}, fmt.Errorf("gateway Service %s has no load balancer address, and listing Nodes for NodePort mode failed: %w; %s", ref, err, overrideHint)
		}
		nodes = list.Items
	}
	return FromObjects(svc, nodes)
}

// Service reads the gateway Service of opts: the named one, else the
// east-west gateway when the cluster has one (Service istio-eastwestgateway,
// or one selecting the pods istio: eastwestgateway, as Istio's gateway chart
// installs it under another release name), else the ingress gateway.
func Service(ctx context.Context, kube kubernetes.Interface, opts Options) (*corev1.Service, error) {
	opts = opts.withDefaults()
	names := []string{opts.Service}
	if opts.Service == "" {
		names = []string{EastWestService, DefaultService}
	}
	for i, name := range names {
		svc, err := kube.CoreV1().Services(opts.Namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
			return svc, nil
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("gateway Service %s/%s: %w", opts.Namespace, name, err)
		}
		if opts.Service == "" && i == 0 {
			svc, err := eastWestBySelector(ctx, kube, opts.Namespace)
			if err != nil || svc != nil {
				return svc, err
			}
		}
	}
	if opts.Service == "" {
		return nil, fmt.Errorf("neither gateway Service %s/%s nor %s/%s exists; install Istio's east-west gateway, name yours with --gateway-service and --gateway-namespace, or %s", opts.Namespace, EastWestService, opts.Namespace, DefaultService, overrideHint)
	}
	return nil, fmt.Errorf("gateway Service %s/%s not found; check --gateway-service and --gateway-namespace, or %s", opts.Namespace, opts.Service, overrideHint)
}

// EastWestSelector is the pod label of Istio's east-west gateway.
const EastWestSelector = "eastwestgateway"

// IsEastWest reports whether svc is Istio's east-west gateway: named so,
// or selecting the pods istio: eastwestgateway.
func IsEastWest(svc *corev1.Service) bool {
	return svc.Name == EastWestService || svc.Spec.Selector["istio"] == EastWestSelector
}

// eastWestBySelector finds a Service of ns selecting the east-west
// gateway's pods; nil when there is none.
func eastWestBySelector(ctx context.Context, kube kubernetes.Interface, ns string) (*corev1.Service, error) {
	list, err := kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if apierrors.IsForbidden(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the Services of %s for an east-west gateway: %w", ns, err)
	}
	var found []corev1.Service
	for _, s := range list.Items {
		if s.Spec.Selector["istio"] == EastWestSelector {
			found = append(found, s)
		}
	}
	if len(found) == 0 {
		return nil, nil
	}
	slices.SortFunc(found, func(a, b corev1.Service) int { return cmp.Compare(a.Name, b.Name) })
	return &found[0], nil
}

func needsNodes(svc *corev1.Service) bool {
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.IP != "" || in.Hostname != "" {
			return false
		}
	}
	return true
}

// FromObjects is Discover on objects already read: the gateway Service and,
// for NodePort mode, the cluster's Nodes.
func FromObjects(svc *corev1.Service, nodes []corev1.Node) (Address, error) {
	ref := svc.Namespace + "/" + svc.Name
	port, hasPort := tlsPort(svc)
	for _, in := range svc.Status.LoadBalancer.Ingress {
		a := Address{Port: rules.GatewayPort, Service: ref, Selector: svc.Spec.Selector}
		switch {
		case in.IP != "":
			a.Host, a.Mode = in.IP, ModeLoadBalancerIP
		case in.Hostname != "":
			a.Host, a.Mode = in.Hostname, ModeLoadBalancerHostname
		default:
			continue
		}
		if !hasPort {
			a.Warnings = append(a.Warnings, fmt.Sprintf("gateway Service %s has no port %d (name %q); remote traffic will fail until the gateway serves it", ref, rules.GatewayPort, rules.GatewayPortName))
		} else if port.Port != rules.GatewayPort {
			a.Port = uint32(port.Port) //nolint:gosec // a Service port is 1..65535
			a.Warnings = append(a.Warnings, PortWarning(a.Port))
		}
		return a, nil
	}
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
	default:
		return Address{}, fmt.Errorf("gateway Service %s is of type %s, with neither a load balancer address nor node ports; %s", ref, svc.Spec.Type, overrideHint)
	}
	if !hasPort {
		return Address{}, fmt.Errorf("gateway Service %s has no load balancer address and no port mapped to %d (name %q); %s", ref, rules.GatewayPort, rules.GatewayPortName, overrideHint)
	}
	if port.NodePort == 0 {
		return Address{}, fmt.Errorf("gateway Service %s has no load balancer address and port %q has no node port; %s", ref, port.Name, overrideHint)
	}
	host, ok := nodeAddress(nodes)
	if !ok {
		return Address{}, fmt.Errorf("gateway Service %s has no load balancer address and no Node has an ExternalIP or InternalIP; %s", ref, overrideHint)
	}
	p := uint32(port.NodePort) //nolint:gosec // a node port is 1..65535
	return Address{Host: host, Port: p, Mode: ModeNodePort, Warnings: []string{NodePortWarning(p)}, Service: ref, Selector: svc.Spec.Selector}, nil
}

// tlsPort finds the Service port that leads to the gateway's 15443 listener:
// by port or target port number, else by the stock name "tls".
func tlsPort(svc *corev1.Service) (corev1.ServicePort, bool) {
	for _, p := range svc.Spec.Ports {
		if p.Port == rules.GatewayPort || p.TargetPort.IntValue() == rules.GatewayPort {
			return p, true
		}
	}
	for _, p := range svc.Spec.Ports {
		if p.Name == rules.GatewayPortName {
			return p, true
		}
	}
	return corev1.ServicePort{}, false
}

// nodeAddress picks a stable node address: Ready nodes first, then by name;
// the first ExternalIP, else the first InternalIP.
func nodeAddress(nodes []corev1.Node) (string, bool) {
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b corev1.Node) int {
		if ra, rb := ready(a), ready(b); ra != rb {
			if ra {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Name, b.Name)
	})
	for _, typ := range []corev1.NodeAddressType{corev1.NodeExternalIP, corev1.NodeInternalIP} {
		for _, n := range sorted {
			for _, a := range n.Status.Addresses {
				if a.Type == typ && a.Address != "" {
					return a.Address, true
				}
			}
		}
	}
	return "", false
}

func ready(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ParseOverride parses --gateway-address: HOST or HOST:PORT, with IPv6
// hosts in brackets when a port is given. The port defaults to 15443.
func ParseOverride(s string) (Address, error) {
	const flag = "--gateway-address"
	if s == "" {
		return Address{}, fmt.Errorf("%s is empty; use HOST or HOST:PORT, e.g. 203.0.113.7 or gw.example.com:31443", flag)
	}
	host, portStr := s, ""
	if _, err := netip.ParseAddr(s); err != nil {
		if h, p, err := net.SplitHostPort(s); err == nil {
			host, portStr = h, p
		} else if strings.Contains(s, ":") && !strings.HasPrefix(s, "[") {
			return Address{}, fmt.Errorf("%s %q: %w; use HOST or HOST:PORT", flag, s, err)
		}
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	a := Address{Host: host, Port: rules.GatewayPort, Mode: ModeOverride}
	if _, err := netip.ParseAddr(host); err != nil {
		if msgs := validation.IsDNS1123Subdomain(host); len(msgs) > 0 {
			return Address{}, fmt.Errorf("%s %q: host %q is neither an IP address nor a DNS name (%s)", flag, s, host, strings.Join(msgs, "; "))
		}
	}
	if portStr != "" {
		p, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil || p == 0 {
			return Address{}, fmt.Errorf("%s %q: port %q is not a number from 1 to 65535", flag, s, portStr)
		}
		a.Port = uint32(p)
	}
	if a.Port != rules.GatewayPort {
		a.Warnings = append(a.Warnings, PortWarning(a.Port))
	}
	return a, nil
}
