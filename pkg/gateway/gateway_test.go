package gateway

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
)

func gwService(typ corev1.ServiceType, ingress []corev1.LoadBalancerIngress, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultService, Namespace: DefaultNamespace},
		Spec:       corev1.ServiceSpec{Type: typ, Ports: ports},
		Status:     corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: ingress}},
	}
}

var (
	tlsPortSpec   = corev1.ServicePort{Name: "tls", Port: 15443, TargetPort: intstr.FromInt32(15443), NodePort: 31443}
	httpPortSpec  = corev1.ServicePort{Name: "http2", Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: 30080}
	renamedTarget = corev1.ServicePort{Name: "mtls", Port: 443, TargetPort: intstr.FromInt32(15443), NodePort: 32443}
)

func node(name string, ready bool, addrs ...corev1.NodeAddress) corev1.Node {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{
			Addresses:  addrs,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}},
		},
	}
}

func TestFromObjects(t *testing.T) {
	ext := func(a string) corev1.NodeAddress { return corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: a} }
	in := func(a string) corev1.NodeAddress { return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a} }
	tests := map[string]struct {
		svc      *corev1.Service
		nodes    []corev1.Node
		want     Address
		warnings int
		err      string
	}{
		"load balancer IP": {
			svc:  gwService(corev1.ServiceTypeLoadBalancer, []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}}, httpPortSpec, tlsPortSpec),
			want: Address{Host: "192.0.2.10", Port: 15443, Mode: ModeLoadBalancerIP},
		},
		"load balancer host name": {
			svc:  gwService(corev1.ServiceTypeLoadBalancer, []corev1.LoadBalancerIngress{{Hostname: "gw.elb.example.com"}}, tlsPortSpec),
			want: Address{Host: "gw.elb.example.com", Port: 15443, Mode: ModeLoadBalancerHostname},
		},
		"IP wins over host name": {
			svc:  gwService(corev1.ServiceTypeLoadBalancer, []corev1.LoadBalancerIngress{{IP: "192.0.2.10", Hostname: "gw.example.com"}}, tlsPortSpec),
			want: Address{Host: "192.0.2.10", Port: 15443, Mode: ModeLoadBalancerIP},
		},
		"load balancer without a 15443 port warns": {
			svc:      gwService(corev1.ServiceTypeLoadBalancer, []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}}, httpPortSpec),
			want:     Address{Host: "192.0.2.10", Port: 15443, Mode: ModeLoadBalancerIP},
			warnings: 1,
		},
		"load balancer port 443 targeting 15443": {
			svc:      gwService(corev1.ServiceTypeLoadBalancer, []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}}, renamedTarget),
			want:     Address{Host: "192.0.2.10", Port: 443, Mode: ModeLoadBalancerIP},
			warnings: 1,
		},
		"node port on the ready node's external IP": {
			svc: gwService(corev1.ServiceTypeLoadBalancer, nil, httpPortSpec, tlsPortSpec),
			nodes: []corev1.Node{
				node("a", false, ext("198.51.100.1")),
				node("b", true, in("10.0.0.2"), ext("198.51.100.2")),
			},
			want:     Address{Host: "198.51.100.2", Port: 31443, Mode: ModeNodePort},
			warnings: 1,
		},
		"node port falls back to internal IP": {
			svc:      gwService(corev1.ServiceTypeNodePort, nil, renamedTarget),
			nodes:    []corev1.Node{node("a", true, in("10.0.0.1"))},
			want:     Address{Host: "10.0.0.1", Port: 32443, Mode: ModeNodePort},
			warnings: 1,
		},
		"node port without nodes": {
			svc: gwService(corev1.ServiceTypeNodePort, nil, tlsPortSpec),
			err: "no Node has an ExternalIP or InternalIP",
		},
		"cluster IP only": {
			svc: gwService(corev1.ServiceTypeClusterIP, nil, tlsPortSpec),
			err: "--gateway-address",
		},
		"no 15443 port in NodePort mode": {
			svc:   gwService(corev1.ServiceTypeNodePort, nil, httpPortSpec),
			nodes: []corev1.Node{node("a", true, ext("198.51.100.1"))},
			err:   "no port mapped to 15443",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := FromObjects(tc.svc, tc.nodes)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("FromObjects() error = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromObjects() error = %v", err)
			}
			if got.Host != tc.want.Host || got.Port != tc.want.Port || got.Mode != tc.want.Mode {
				t.Errorf("FromObjects() = %+v, want %+v", got, tc.want)
			}
			if len(got.Warnings) != tc.warnings {
				t.Errorf("FromObjects() warnings = %q, want %d", got.Warnings, tc.warnings)
			}
		})
	}
}

func TestDiscover(t *testing.T) {
	svc := gwService(corev1.ServiceTypeLoadBalancer, nil, tlsPortSpec)
	n := node("n1", true, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "198.51.100.31"})
	kube := fake.NewClientset(svc, &n)
	got, err := Discover(t.Context(), kube, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != "198.51.100.31:31443" || got.Mode != ModeNodePort {
		t.Errorf("Discover() = %+v, want 198.51.100.31:31443 in NodePort mode", got)
	}
	_, err = Discover(t.Context(), kube, Options{Service: "eastwest", Namespace: "istio-gw"})
	if err == nil || !strings.Contains(err.Error(), "istio-gw/eastwest not found") || !strings.Contains(err.Error(), "--gateway-address") {
		t.Errorf("Discover() of a missing Service: error = %v, want one naming istio-gw/eastwest and --gateway-address", err)
	}
}

func TestParseOverride(t *testing.T) {
	tests := map[string]struct {
		in       string
		want     string
		warnings int
		err      bool
	}{
		"IPv4":             {in: "203.0.113.7", want: "203.0.113.7:15443"},
		"IPv4 and port":    {in: "203.0.113.7:31443", want: "203.0.113.7:31443", warnings: 1},
		"DNS name":         {in: "gw.example.com", want: "gw.example.com:15443"},
		"DNS name, port":   {in: "gw.example.com:15443", want: "gw.example.com:15443"},
		"IPv6":             {in: "2001:db8::1", want: "[2001:db8::1]:15443"},
		"IPv6 in brackets": {in: "[2001:db8::1]:31443", want: "[2001:db8::1]:31443", warnings: 1},
		"empty":            {in: "", err: true},
		"bad port":         {in: "gw.example.com:0", err: true},
		"port too big":     {in: "gw.example.com:70000", err: true},
		"bad host":         {in: "Not_A_Host:15443", err: true},
		"garbage colons":   {in: "a:b:c", err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseOverride(tc.in)
			if tc.err {
				if err == nil || !strings.Contains(err.Error(), "--gateway-address") {
					t.Fatalf("ParseOverride(%q) error = %v, want one naming --gateway-address", tc.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseOverride(%q) error = %v", tc.in, err)
			}
			if got.String() != tc.want || got.Mode != ModeOverride || len(got.Warnings) != tc.warnings {
				t.Errorf("ParseOverride(%q) = %+v, want %s with %d warnings", tc.in, got, tc.want, tc.warnings)
			}
		})
	}
}

// TestDiscoverPrefersEastWest: without --gateway-service the east-west
// gateway of Istio's multi-network install is the one that passes *.local
// through, so its address (and selector) win over the ingress gateway's.
func TestDiscoverPrefersEastWest(t *testing.T) {
	ingress := gwService(corev1.ServiceTypeLoadBalancer, []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}}, tlsPortSpec)
	ingress.Spec.Selector = map[string]string{"istio": "ingressgateway"}
	eastwest := gwService(corev1.ServiceTypeLoadBalancer, []corev1.LoadBalancerIngress{{IP: "192.0.2.20"}}, tlsPortSpec)
	eastwest.Name = EastWestService
	eastwest.Spec.Selector = map[string]string{"istio": "eastwestgateway"}
	tests := map[string]struct {
		objects      []runtime.Object
		opts         Options
		wantHost     string
		wantService  string
		wantSelector string
		err          string
	}{
		"both: east-west":         {objects: []runtime.Object{ingress, eastwest}, wantHost: "192.0.2.20", wantService: "istio-system/istio-eastwestgateway", wantSelector: "eastwestgateway"},
		"only ingress":            {objects: []runtime.Object{ingress}, wantHost: "192.0.2.10", wantService: "istio-system/istio-ingressgateway", wantSelector: "ingressgateway"},
		"named: ingress":          {objects: []runtime.Object{ingress, eastwest}, opts: Options{Service: DefaultService}, wantHost: "192.0.2.10", wantService: "istio-system/istio-ingressgateway", wantSelector: "ingressgateway"},
		"neither: names both":     {err: "neither gateway Service istio-system/istio-eastwestgateway nor istio-system/istio-ingressgateway exists"},
		"named missing: names it": {objects: []runtime.Object{ingress}, opts: Options{Service: EastWestService}, err: "istio-system/istio-eastwestgateway not found"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Discover(t.Context(), fake.NewClientset(tc.objects...), tc.opts)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Discover(%+v) error = %v, want %q", tc.opts, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Host != tc.wantHost || got.Service != tc.wantService || got.Selector["istio"] != tc.wantSelector {
				t.Fatalf("Discover(%+v) = %+v, want host %s of %s selecting istio=%s", tc.opts, got, tc.wantHost, tc.wantService, tc.wantSelector)
			}
		})
	}
}

func TestLocality(t *testing.T) {
	node := func(name, region, zone string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
		if region != "" {
			n.Labels[RegionLabel] = region
		}
		if zone != "" {
			n.Labels[ZoneLabel] = zone
		}
		return n
	}
	pod := func(name, nodeName string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "istio-system", Labels: map[string]string{"istio": "ingressgateway"}}, Spec: corev1.PodSpec{NodeName: nodeName}}
	}
	gw := Address{Service: "istio-system/istio-ingressgateway", Selector: map[string]string{"istio": "ingressgateway"}}
	tests := map[string]struct {
		objects []runtime.Object
		want    string
		how     string
	}{
		"gateway pods on one zone": {
			objects: []runtime.Object{node("a", "eu", "eu-1"), node("b", "us", "us-1"), pod("gw-1", "a")},
			want:    "eu/eu-1", how: "gateway's pods",
		},
		"gateway pods in two zones of one region": {
			objects: []runtime.Object{node("a", "eu", "eu-1"), node("b", "eu", "eu-2"), node("c", "us", "us-1"), pod("gw-1", "a"), pod("gw-2", "b")},
			want:    "eu", how: "gateway's pods",
		},
		"no pods: all nodes agree on the region": {
			objects: []runtime.Object{node("a", "eu", "eu-1"), node("b", "eu", "eu-2")},
			want:    "eu", how: "cluster's nodes",
		},
		"no pods: nodes disagree": {
			objects: []runtime.Object{node("a", "eu", "eu-1"), node("b", "us", "us-1")},
			want:    "", how: "cluster's nodes",
		},
		"no topology labels": {
			objects: []runtime.Object{node("a", "", "")},
			want:    "", how: "cluster's nodes",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, how, err := Locality(t.Context(), fake.NewClientset(tc.objects...), gw)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || !strings.Contains(how, tc.how) {
				t.Fatalf("Locality = %q (%s), want %q (%s)", got, how, tc.want, tc.how)
			}
		})
	}
}
