package lab

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Gateway addresses of the furniture profiles (documentation ranges, never
// routed). The second profile's gateway is an ELB-style host name.
const (
	IngressIPCluster1       = "192.0.2.10"
	IngressHostnameCluster2 = "a1b2c3d4e5f6a7b8-1234567890.eu-west-1.elb.amazonaws.com"
)

// Profile is what a cluster's furniture looks like.
type Profile struct {
	IngressIP       string // LoadBalancer ingress IP, or ""
	IngressHostname string // LoadBalancer ingress host name, or ""
	KubeDNS         bool   // kube-dns ConfigMap instead of CoreDNS
	NodeInternal    []string
	NodeExternal    []string
}

// ProfileOf returns the furniture profile of the cluster at index i.
func ProfileOf(i int) Profile {
	n := i + 1
	p := Profile{
		NodeInternal: []string{fmt.Sprintf("10.%d.0.11", 100+n), fmt.Sprintf("10.%d.0.12", 100+n)},
		NodeExternal: []string{fmt.Sprintf("198.51.100.%d", 10*n+1), fmt.Sprintf("198.51.100.%d", 10*n+2)},
	}
	switch i % 3 {
	case 0:
		p.IngressIP = IngressIPCluster1
		if i > 0 {
			p.IngressIP = fmt.Sprintf("192.0.2.%d", 10+i)
		}
	case 1:
		p.IngressHostname = IngressHostnameCluster2
		if i > 1 {
			p.IngressHostname = fmt.Sprintf("gw-%d.elb.example.com", n)
		}
		p.KubeDNS = true
	}
	return p
}

// Profile is this cluster's furniture profile.
func (c *Cluster) Profile() Profile { return ProfileOf(c.Index) }

// CoreDNSCorefile is the Corefile of a current kubeadm cluster, with one
// extra stub zone so that edits must keep existing server blocks.
const CoreDNSCorefile = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
corp.example.com:53 {
    errors
    cache 30
    forward . 10.150.0.1
}
`

// KubeDNSStubDomains is the existing stub domain of the kube-dns profile,
// which an edit must keep.
var KubeDNSStubDomains = map[string][]string{"corp.example.com": {"10.150.0.1"}}

func (c *Cluster) furnish(ctx context.Context) error {
	p := c.Profile()
	namespaces := []string{"istio-system", "foo", "bar", "hello"}
	if c.CurrentIstio {
		namespaces = append(namespaces, SampleNamespace)
	}
	for _, ns := range namespaces {
		labels := map[string]string{"istio-injection": "enabled"}
		if ns == "istio-system" {
			labels = map[string]string{"topology.istio.io/network": "network-" + c.Name}
		}
		if err := create(ctx, c.Kube.CoreV1().Namespaces().Create, &corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels},
		}); err != nil {
			return err
		}
	}
	if err := c.furnishNodes(ctx, p); err != nil {
		return err
	}
	istio := c.furnishIstio
	if c.CurrentIstio {
		istio = c.furnishCurrentIstio
	}
	if err := istio(ctx, p); err != nil {
		return err
	}
	if err := c.furnishDNS(ctx, p); err != nil {
		return err
	}
	return c.furnishApps(ctx)
}

// Apps are the cluster's sample apps.
func (c *Cluster) Apps() []App {
	if c.CurrentIstio {
		return CurrentApps(c.CurrentIndex)
	}
	return AppsOf(c.Index)
}

func (c *Cluster) furnishNodes(ctx context.Context, p Profile) error {
	for i := range p.NodeInternal {
		name := fmt.Sprintf("%s-node-%d", c.Name, i+1)
		n, err := c.Kube.CoreV1().Nodes().Create(ctx, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
				"kubernetes.io/hostname":        name,
				"topology.kubernetes.io/region": "region-" + c.Name,
				"topology.kubernetes.io/zone":   fmt.Sprintf("zone-%s-%d", c.Name, i+1),
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("node %s: %w", name, err)
		}
		n.Status.Addresses = []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: p.NodeInternal[i]},
			{Type: corev1.NodeExternalIP, Address: p.NodeExternal[i]},
			{Type: corev1.NodeHostName, Address: name},
		}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}}
		if _, err := c.Kube.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("node %s status: %w", name, err)
		}
	}
	return nil
}

func tcp(name string, port, target int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, TargetPort: intstr.FromInt32(target), Protocol: corev1.ProtocolTCP}
}

func (c *Cluster) furnishIstio(ctx context.Context, p Profile) error {
	const ns = "istio-system"
	ingress := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-ingressgateway", Namespace: ns, Labels: map[string]string{"app": "istio-ingressgateway", "istio": "ingressgateway"}},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": "istio-ingressgateway", "istio": "ingressgateway"},
			Ports: []corev1.ServicePort{
				tcp("status-port", 15021, 15021),
				tcp("http2", 80, 8080),
				tcp("https", 443, 8443),
				tcp("tls", 15443, 15443),
			},
		},
	}
	svc, err := c.Kube.CoreV1().Services(ns).Create(ctx, ingress, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("service istio-ingressgateway: %w", err)
	}
	if p.IngressIP != "" || p.IngressHostname != "" {
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: p.IngressIP, Hostname: p.IngressHostname}}
		if _, err := c.Kube.CoreV1().Services(ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("service istio-ingressgateway status: %w", err)
		}
	}
	objs := []*corev1.Service{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "istio-egressgateway", Namespace: ns, Labels: map[string]string{"app": "istio-egressgateway", "istio": "egressgateway"}},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": "istio-egressgateway", "istio": "egressgateway"},
				Ports:    []corev1.ServicePort{tcp("http2", 80, 8080), tcp("https", 443, 8443), tcp("tls", 15443, 15443)},
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "istiocoredns", Namespace: ns, Labels: map[string]string{"app": "istiocoredns"}},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": "istiocoredns"},
				Ports: []corev1.ServicePort{
					{Name: "dns", Port: 53, TargetPort: intstr.FromInt32(53), Protocol: corev1.ProtocolUDP},
					{Name: "dns-tcp", Port: 53, TargetPort: intstr.FromInt32(53), Protocol: corev1.ProtocolTCP},
				},
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "istiod", Namespace: ns, Labels: map[string]string{"app": "istiod", "istio": "pilot"}},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": "istiod", "istio": "pilot"},
				Ports:    []corev1.ServicePort{tcp("grpc-xds", 15010, 15010), tcp("https-dns", 15012, 15012), tcp("https-webhook", 443, 15017)},
			},
		},
	}
	for _, s := range objs {
		if err := create(ctx, c.Kube.CoreV1().Services(ns).Create, s); err != nil {
			return err
		}
	}
	// The pod labels are Istio's own: its Gateways select gateway pods by
	// istio=<name>, as the Services above do.
	for _, d := range []struct {
		name   string
		labels map[string]string
		image  string
	}{
		{"istiod", map[string]string{"app": "istiod", "istio": "pilot"}, "docker.io/istio/pilot:1.7.8"},
		{"istio-ingressgateway", map[string]string{"app": "istio-ingressgateway", "istio": "ingressgateway"}, "docker.io/istio/proxyv2:1.7.8"},
		{"istio-egressgateway", map[string]string{"app": "istio-egressgateway", "istio": "egressgateway"}, "docker.io/istio/proxyv2:1.7.8"},
		{"istiocoredns", map[string]string{"app": "istiocoredns"}, "docker.io/coredns/coredns:1.6.2"},
	} {
		if err := create(ctx, c.Kube.AppsV1().Deployments(ns).Create, deployment(ns, d.name, d.labels, d.image)); err != nil {
			return err
		}
	}
	return nil
}

func deployment(ns, name string, labels map[string]string, image string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: image}}},
			},
		},
	}
}

func (c *Cluster) furnishDNS(ctx context.Context, p Profile) error {
	const ns = "kube-system"
	dnsSvc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: ns, Labels: map[string]string{"k8s-app": "kube-dns"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: "10.0.0.10",
			Selector:  map[string]string{"k8s-app": "kube-dns"},
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, TargetPort: intstr.FromInt32(53), Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", Port: 53, TargetPort: intstr.FromInt32(53), Protocol: corev1.ProtocolTCP},
			},
		},
	}
	if err := create(ctx, c.Kube.CoreV1().Services(ns).Create, dnsSvc); err != nil {
		return err
	}
	if p.KubeDNS {
		stub, err := json.Marshal(KubeDNSStubDomains)
		if err != nil {
			return err
		}
		return create(ctx, c.Kube.CoreV1().ConfigMaps(ns).Create, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: ns, Labels: map[string]string{"addonmanager.kubernetes.io/mode": "EnsureExists"}},
			Data:       map[string]string{"stubDomains": string(stub), "upstreamNameservers": `["8.8.8.8", "8.8.4.4"]`},
		})
	}
	return create(ctx, c.Kube.CoreV1().ConfigMaps(ns).Create, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: ns},
		Data:       map[string]string{"Corefile": CoreDNSCorefile},
	})
}

// App is a sample app of the lab: a Service and one Pod per version.
type App struct {
	Name, Namespace string
	Ports           []corev1.ServicePort
	Versions        []string // one Pod each; "" means no version label
}

// AppsOf returns the sample apps of the cluster at index i: sleep (foo) in
// the first, httpbin (bar) in the second, helloworld (hello) v1 in the
// first and v2, v3 in the second.
func AppsOf(i int) []App {
	hello := []corev1.ServicePort{tcp("http", 5000, 5000)}
	switch i {
	case 0:
		return []App{
			{Name: "sleep", Namespace: "foo", Ports: []corev1.ServicePort{tcp("http", 80, 80)}, Versions: []string{""}},
			{Name: "helloworld", Namespace: "hello", Ports: hello, Versions: []string{"v1"}},
		}
	case 1:
		httpbin := tcp("http1", 8000, 80)
		httpbin.AppProtocol = ptr.To("http")
		return []App{
			{Name: "httpbin", Namespace: "bar", Ports: []corev1.ServicePort{httpbin}, Versions: []string{"v1"}},
			{Name: "helloworld", Namespace: "hello", Ports: hello, Versions: []string{"v2", "v3"}},
		}
	case 2:
		return []App{{Name: "helloworld", Namespace: "hello", Ports: hello, Versions: []string{"v4"}}}
	}
	return nil
}

func (c *Cluster) furnishApps(ctx context.Context) error {
	if c.CurrentIstio {
		if err := c.furnishEndpointSlices(ctx, c.Apps()); err != nil {
			return err
		}
	}
	for _, app := range c.Apps() {
		sel := map[string]string{"app": app.Name}
		if err := create(ctx, c.Kube.CoreV1().ServiceAccounts(app.Namespace).Create, &corev1.ServiceAccount{
			ObjectMeta: metav1.ObjectMeta{Name: app.Name, Namespace: app.Namespace},
		}); err != nil {
			return err
		}
		if err := create(ctx, c.Kube.CoreV1().Services(app.Namespace).Create, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: app.Name, Namespace: app.Namespace, Labels: map[string]string{"app": app.Name, "service": app.Name}},
			Spec:       corev1.ServiceSpec{Selector: sel, Ports: app.Ports},
		}); err != nil {
			return err
		}
		for _, v := range app.Versions {
			labels := map[string]string{"app": app.Name}
			name := app.Name + "-" + c.Name
			if v != "" {
				labels["version"] = v
				name = app.Name + "-" + v
			}
			if err := create(ctx, c.Kube.CoreV1().Pods(app.Namespace).Create, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: app.Namespace, Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: app.Name,
					Containers:         []corev1.Container{{Name: app.Name, Image: appImage(app.Name, v)}},
				},
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

func appImage(app, version string) string {
	switch app {
	case "sleep":
		return "docker.io/curlimages/curl:8.5.0"
	case "httpbin":
		return "docker.io/kong/httpbin:0.1.0"
	}
	return "docker.io/istio/examples-" + app + "-" + version + ":1.0"
}

type namedObject interface{ GetName() string }

// create creates obj and treats AlreadyExists as success, so furnishing is
// idempotent.
func create[T namedObject](ctx context.Context, fn func(context.Context, T, metav1.CreateOptions) (T, error), obj T) error {
	if _, err := fn(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create %T %s: %w", obj, obj.GetName(), err)
	}
	return nil
}
