package conformance

// Facts about Istio's pilot that the `.global` model (DESIGN.md §1.9) and
// this test rest on, pinned on small hand-made clusters so that an Istio
// upgrade that changes them shows up here, by name, rather than as a
// puzzling failure of TestRoutes. They need no lab.

import (
	"net"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"istio.io/istio/pilot/pkg/model"
)

const (
	factSNIWhole = "outbound_.5000_._.helloworld.hello.svc.cluster.local"
	factSNIV2    = "outbound_.5000_.v2_.helloworld.hello.svc.cluster.local"
	factSNIV3    = "outbound_.5000_.v3_.helloworld.hello.svc.cluster.local"
	factGlobal   = "helloworld.hello.global"
)

// factSource is a source cluster: helloworld v2 and v3 behind an east-west
// gateway whose AUTO_PASSTHROUGH server on 15443 has the given hosts, and
// a DestinationRule with the version subsets; with what a kubelet, the
// injector and the EndpointSlice controller add (withKubeletAndInjector).
func factSource(t *testing.T, gatewayHosts string) *clusterObjects {
	t.Helper()
	hello := map[string]string{"app": "helloworld"}
	gateway := map[string]string{"app": "istio-eastwestgateway", "istio": "eastwestgateway"}
	pod := func(version string) corev1.Pod {
		return corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "helloworld-" + version, Namespace: "hello", Labels: map[string]string{"app": "helloworld", "version": version}},
			Spec:       corev1.PodSpec{ServiceAccountName: "helloworld", Containers: []corev1.Container{{Name: "helloworld", Image: "helloworld"}}},
		}
	}
	c := &clusterObjects{
		name: "cluster2",
		namespaces: []corev1.Namespace{
			{ObjectMeta: metav1.ObjectMeta{Name: "hello", Labels: map[string]string{"istio-injection": "enabled"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: istioSystem}},
		},
		services: []corev1.Service{{
			ObjectMeta: metav1.ObjectMeta{Name: "helloworld", Namespace: "hello"},
			Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.50", Selector: hello, Ports: []corev1.ServicePort{
				{Name: "http", Port: 5000, TargetPort: intstr.FromInt32(5000), Protocol: corev1.ProtocolTCP},
			}},
		}, {
			ObjectMeta: metav1.ObjectMeta{Name: "istio-eastwestgateway", Namespace: istioSystem},
			Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.60", Selector: gateway, Ports: []corev1.ServicePort{
				{Name: "tls", Port: 15443, TargetPort: intstr.FromInt32(15443), Protocol: corev1.ProtocolTCP},
			}},
		}},
		pods: []corev1.Pod{pod("v2"), pod("v3")},
		deployments: []appsv1.Deployment{{
			ObjectMeta: metav1.ObjectMeta{Name: "istio-eastwestgateway", Namespace: istioSystem},
			Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: gateway},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "istio-proxy", Image: "proxyv2"}}},
			}},
		}},
		istio: []*unstructured.Unstructured{
			mustUnstructured(t, `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: cross-network-gateway, namespace: istio-system}
spec:
  selector: {istio: eastwestgateway}
  servers:
  - port: {number: 15443, name: tls, protocol: TLS}
    tls: {mode: AUTO_PASSTHROUGH}
    hosts: ["`+gatewayHosts+`"]
`),
			mustUnstructured(t, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: helloworld, namespace: hello}
spec:
  host: helloworld.hello.svc.cluster.local
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
  subsets:
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
`),
		},
	}
	return c.withKubeletAndInjector(1)
}

// factCaller is a calling cluster with the .global ServiceEntry of
// helloworld (one endpoint: the source gateway on 15443, labelled with
// epLabels) and, if given, more Istio objects.
func factCaller(t *testing.T, epLabels string, more ...*unstructured.Unstructured) *clusterObjects {
	t.Helper()
	c := &clusterObjects{
		name:       "cluster1",
		namespaces: []corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "hello", Labels: map[string]string{"istio-injection": "enabled"}}}},
		pods: []corev1.Pod{{
			ObjectMeta: metav1.ObjectMeta{Name: "sleep", Namespace: "hello", Labels: map[string]string{"app": "sleep"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "sleep", Image: "curl"}}},
		}},
		istio: append([]*unstructured.Unstructured{mustUnstructured(t, `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: helloworld-hello, namespace: hello}
spec:
  hosts: [helloworld.hello.global]
  addresses: [240.0.0.5]
  location: MESH_INTERNAL
  resolution: DNS
  ports: [{number: 5000, name: http, protocol: HTTP}]
  endpoints:
  - address: 203.0.113.7
    labels: `+epLabels+`
    ports: {http: 15443}
`)}, more...),
	}
	return c.withKubeletAndInjector(0)
}

func mustUnstructured(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatalf("%v:\n%s", err, doc)
	}
	return u
}

// gatewayOf is the proxy of the source's gateway pod.
func gatewayOf(t *testing.T, p *pilot) *model.Proxy {
	t.Helper()
	pods := p.podsSelectedBy(istioSystem, map[string]string{"istio": "eastwestgateway"})
	if len(pods) != 1 {
		t.Fatalf("%d gateway pods, want 1", len(pods))
	}
	return p.proxyOf(pods[0], model.Router)
}

// TestPilotFactsPassthroughHosts: an AUTO_PASSTHROUGH server builds one
// filter chain per callee service its hosts cover, named by the callee's
// own SNI. No service is called *.global, so a *.global server gets no
// listener at all: the SNI the caller sends must name NAME.NS.svc.cluster.local.
func TestPilotFactsPassthroughHosts(t *testing.T) {
	for hosts, want := range map[string]bool{"*.local": true, "*.global": false} {
		t.Run(hosts, func(t *testing.T) {
			p := newPilot(t, factSource(t, hosts))
			ls := p.s.Listeners(gatewayOf(t, p))
			l := listenerByPort(ls, gatewayPort)
			if !want {
				if l != nil {
					t.Fatalf("hosts %s: a listener on %d with chains %v, want none", hosts, gatewayPort, serverNamesOf(l))
				}
				return
			}
			if l == nil {
				t.Fatalf("hosts %s: no listener on %d; listeners %v", hosts, gatewayPort, listenerNames(ls))
			}
			for _, sni := range []string{factSNIWhole, factSNIV2, factSNIV3} {
				if filterChainBySNI(l, sni) == nil {
					t.Errorf("hosts %s: no chain for %s; chains %v", hosts, sni, serverNamesOf(l))
				}
			}
		})
	}
}

// TestPilotFactsEndpointSources: the gateway's passthrough clusters get
// their endpoints from EndpointSlices joined to Pods, and only from pods
// labelled tlsMode=istio (sidecar injection). Each supplement of
// withKubeletAndInjector is needed: without it, pilot routes to nothing.
func TestPilotFactsEndpointSources(t *testing.T) {
	base := factSource(t, "*.local")
	addr := map[string]string{}
	for _, p := range base.pods {
		addr[p.Name] = net.JoinHostPort(p.Status.PodIP, "5000")
	}
	v2, v3 := addr["helloworld-v2"], addr["helloworld-v3"]
	none := map[string][]string{factSNIWhole: nil, factSNIV2: nil, factSNIV3: nil}
	cases := map[string]struct {
		change func(c *clusterObjects)
		want   map[string][]string
	}{
		"kubelet, injector and EndpointSlice controller": {
			change: func(*clusterObjects) {},
			want:   map[string][]string{factSNIWhole: {v2, v3}, factSNIV2: {v2}, factSNIV3: {v3}},
		},
		"no EndpointSlices": {
			change: func(c *clusterObjects) { c.endpointSlices = nil },
			want:   none,
		},
		"no injector (no tlsMode label)": {
			change: func(c *clusterObjects) {
				for i := range c.pods {
					delete(c.pods[i].Labels, tlsModeLabel)
				}
			},
			want: none,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := base.deepCopy()
			tc.change(c)
			p := newPilot(t, c)
			gw := gatewayOf(t, p)
			clusters := p.s.Clusters(gw)
			for sni, want := range tc.want {
				cl := clusterByName(clusters, sni)
				if cl == nil {
					t.Fatalf("no gateway cluster %s", sni)
				}
				if got := clusterEndpoints(p.s, gw, cl); !slices.Equal(got, want) {
					t.Errorf("endpoints of %s = %v, want %v", sni, got, want)
				}
			}
		})
	}
}

// TestPilotFactsCallerWithoutDestinationRule: without a DestinationRule, the
// caller's cluster for a .global entry has only auto mTLS, which sends TLS
// to endpoints labelled tlsMode=istio — a ServiceEntry endpoint has no such
// label, so the request goes out in plain text to 15443. Even with the label,
// auto mTLS's SNI names the .global host, which no passthrough chain
// matches (TestPilotFactsPassthroughHosts): the DestinationRule's explicit
// per-port and per-subset SNI is what makes a .global service route.
func TestPilotFactsCallerWithoutDestinationRule(t *testing.T) {
	cases := map[string]struct {
		epLabels     string
		wantTLSModes []string
	}{
		"endpoint without tlsMode": {epLabels: "{cluster: cluster2}", wantTLSModes: []string{""}},
		"endpoint with tlsMode":    {epLabels: "{cluster: cluster2, security.istio.io/tlsMode: istio}", wantTLSModes: []string{"istio"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := newPilot(t, factCaller(t, tc.epLabels))
			proxy := p.proxyOf(p.sidecarPod("hello"), model.SidecarProxy)
			clusters := p.s.Clusters(proxy)
			cl := clusterByName(clusters, "outbound|5000||"+factGlobal)
			if cl == nil {
				t.Fatalf("no cluster outbound|5000||%s", factGlobal)
			}
			if clusterByName(clusters, "outbound|5000|v2|"+factGlobal) != nil {
				t.Errorf("a subset cluster exists without a DestinationRule")
			}
			if cl.GetTransportSocket() != nil {
				t.Errorf("an unconditional transport socket %q, want auto mTLS only", cl.GetTransportSocket().GetName())
			}
			if got := endpointTLSModes(cl); !slices.Equal(got, tc.wantTLSModes) {
				t.Errorf("endpoint tlsModes %q, want %q", got, tc.wantTLSModes)
			}
			tls, how, err := clusterUpstreamTLS(cl)
			if err != nil {
				t.Fatalf("no auto mTLS match: %v", err)
			}
			if want := "outbound_.5000_._." + factGlobal; tls.GetSni() != want {
				t.Errorf("auto mTLS (%s) SNI %q, want %q", how, tls.GetSni(), want)
			}
		})
	}
}
