package lab

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// Current-Istio furniture: a cluster as Istio's multi-primary,
// multi-network guide leaves it before its "expose services" and "enable
// endpoint discovery" steps, which kubectl mesh link replaces.
const (
	// CurrentIstioVersion is the istiod and proxy tag of the furniture.
	CurrentIstioVersion = "1.25.2"
	// CurrentMeshID is the mesh ID every current-Istio cluster shares.
	CurrentMeshID = "mesh1"
	// SampleNamespace holds the guide's helloworld and curl.
	SampleNamespace = "sample"
)

// NetworkOf is the network the furniture labels a cluster with.
func NetworkOf(cluster string) string { return "network-" + cluster }

// EastWestIPOf is the load balancer address of a current-Istio cluster's
// east-west gateway (a documentation address, never routed).
func EastWestIPOf(i int) string { return fmt.Sprintf("192.0.2.%d", 200+i) }

// furnishCurrentIstio installs what a current Istio (1.8+, no
// istiocoredns) multi-network install has: istiod with its clusterName and
// the mesh ID in the mesh config, the ingress gateway, the east-west
// gateway (its Service labelled with the network and given a load balancer
// address, and its pods), and Istio's reader account with its ClusterRole.
// istio-system carries the network label (the guide's first step).
func (c *Cluster) furnishCurrentIstio(ctx context.Context, p Profile) error {
	const ns = "istio-system"
	network := NetworkOf(c.Name)
	gateways := []struct {
		name, istio, ip, hostname string
		labels                    map[string]string
		ports                     []corev1.ServicePort
	}{
		{"istio-ingressgateway", "ingressgateway", p.IngressIP, p.IngressHostname, nil,
			[]corev1.ServicePort{tcp("status-port", 15021, 15021), tcp("http2", 80, 8080), tcp("https", 443, 8443)}},
		{"istio-eastwestgateway", "eastwestgateway", EastWestIPOf(c.Index), "", map[string]string{"topology.istio.io/network": network},
			[]corev1.ServicePort{tcp("status-port", 15021, 15021), tcp("tls", 15443, 15443), tcp("tls-istiod", 15012, 15012), tcp("tls-webhook", 15017, 15017)}},
	}
	for _, g := range gateways {
		sel := map[string]string{"app": g.name, "istio": g.istio}
		labels := map[string]string{"app": g.name, "istio": g.istio}
		for k, v := range g.labels {
			labels[k] = v
		}
		svc, err := c.Kube.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: g.name, Namespace: ns, Labels: labels},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: sel, Ports: g.ports},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("service %s: %w", g.name, err)
		}
		if g.ip != "" || g.hostname != "" {
			svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: g.ip, Hostname: g.hostname}}
			if _, err := c.Kube.CoreV1().Services(ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("service %s status: %w", g.name, err)
			}
		}
		if err := create(ctx, c.Kube.AppsV1().Deployments(ns).Create, deployment(ns, g.name, labels, "docker.io/istio/proxyv2:"+CurrentIstioVersion)); err != nil {
			return err
		}
		if err := create(ctx, c.Kube.CoreV1().Pods(ns).Create, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: g.name + "-0", Namespace: ns, Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:" + CurrentIstioVersion}}},
		}); err != nil {
			return err
		}
	}
	if err := create(ctx, c.Kube.CoreV1().Services(ns).Create, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "istiod", Namespace: ns, Labels: map[string]string{"app": "istiod", "istio": "pilot"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "istiod", "istio": "pilot"},
			Ports:    []corev1.ServicePort{tcp("grpc-xds", 15010, 15010), tcp("https-dns", 15012, 15012), tcp("https-webhook", 443, 15017)},
		},
	}); err != nil {
		return err
	}
	istiod := deployment(ns, "istiod", map[string]string{"app": "istiod", "istio": "pilot"}, "docker.io/istio/pilot:"+CurrentIstioVersion)
	istiod.Spec.Template.Spec.Containers[0].Name = "discovery"
	istiod.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "CLUSTER_ID", Value: c.Name}}
	if err := create(ctx, c.Kube.AppsV1().Deployments(ns).Create, istiod); err != nil {
		return err
	}
	meshConfig, err := yaml.Marshal(map[string]any{
		"defaultConfig": map[string]any{
			"discoveryAddress": "istiod.istio-system.svc:15012",
			"meshId":           CurrentMeshID,
			"proxyMetadata":    map[string]any{},
		},
		"defaultProviders": map[string]any{"metrics": []any{"prometheus"}},
		"rootNamespace":    ns,
		"trustDomain":      "cluster.local",
	})
	if err != nil {
		return err
	}
	if err := create(ctx, c.Kube.CoreV1().ConfigMaps(ns).Create, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "istio", Namespace: ns, Labels: map[string]string{"istio.io/rev": "default"}},
		Data:       map[string]string{"mesh": string(meshConfig)},
	}); err != nil {
		return err
	}
	return c.furnishIstioReader(ctx)
}

// furnishIstioReader installs Istio's reader account as Istio's charts do:
// ServiceAccount istio-reader-service-account, ClusterRole and
// ClusterRoleBinding istio-reader-clusterrole-istio-system. The role is the
// one of Istio releases before ConfigMaps were added to it (1.26), which
// differs from the one link would write from Istio's current chart, so
// that tests see link copy the installed Istio's rules.
func (c *Cluster) furnishIstioReader(ctx context.Context) error {
	const ns, sa, role = "istio-system", "istio-reader-service-account", "istio-reader-clusterrole-istio-system"
	labels := map[string]string{"app": "istio-reader", "release": "istio"}
	if err := create(ctx, c.Kube.CoreV1().ServiceAccounts(ns).Create, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns, Labels: labels},
	}); err != nil {
		return err
	}
	var rs []rbacv1.PolicyRule
	for _, g := range []struct {
		groups, resources, verbs []string
	}{
		{[]string{"config.istio.io", "security.istio.io", "networking.istio.io", "authentication.istio.io", "rbac.istio.io", "telemetry.istio.io", "extensions.istio.io"}, []string{"*"}, nil},
		{[]string{""}, []string{"endpoints", "pods", "services", "nodes", "replicationcontrollers", "namespaces", "secrets"}, nil},
		{[]string{"networking.istio.io"}, []string{"workloadentries"}, nil},
		{[]string{"networking.x-k8s.io", "gateway.networking.k8s.io"}, []string{"gateways"}, nil},
		{[]string{"apiextensions.k8s.io"}, []string{"customresourcedefinitions"}, nil},
		{[]string{"discovery.k8s.io"}, []string{"endpointslices"}, nil},
		{[]string{"multicluster.x-k8s.io"}, []string{"serviceexports"}, []string{"get", "list", "watch", "create", "delete"}},
		{[]string{"multicluster.x-k8s.io"}, []string{"serviceimports"}, nil},
		{[]string{"apps"}, []string{"replicasets"}, nil},
		{[]string{"authentication.k8s.io"}, []string{"tokenreviews"}, []string{"create"}},
		{[]string{"authorization.k8s.io"}, []string{"subjectaccessreviews"}, []string{"create"}},
	} {
		verbs := g.verbs
		if verbs == nil {
			verbs = []string{"get", "list", "watch"}
		}
		rs = append(rs, rbacv1.PolicyRule{APIGroups: g.groups, Resources: g.resources, Verbs: verbs})
	}
	if err := create(ctx, c.Kube.RbacV1().ClusterRoles().Create, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: role, Labels: labels}, Rules: rs,
	}); err != nil {
		return err
	}
	return create(ctx, c.Kube.RbacV1().ClusterRoleBindings().Create, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
	})
}

// CurrentApps are the sample apps of the guide in the current-Istio
// cluster at position k among them: curl and helloworld v1 in the first,
// curl and helloworld v2 in the second, and so on.
func CurrentApps(k int) []App {
	return []App{
		{Name: "curl", Namespace: SampleNamespace, Ports: []corev1.ServicePort{tcp("http", 80, 80)}, Versions: []string{""}},
		{Name: "helloworld", Namespace: SampleNamespace, Ports: []corev1.ServicePort{tcp("http", 5000, 5000)}, Versions: []string{fmt.Sprintf("v%d", k+1)}},
	}
}

// furnishEndpointSlices writes the EndpointSlice the endpoint slice
// controller (which the lab does not run) would write for each app Service.
func (c *Cluster) furnishEndpointSlices(ctx context.Context, apps []App) error {
	for i, app := range apps {
		ports := make([]discoveryv1.EndpointPort, 0, len(app.Ports))
		for _, p := range app.Ports {
			ports = append(ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(p.TargetPort.IntVal), Protocol: ptr.To(corev1.ProtocolTCP)})
		}
		if err := create(ctx, c.Kube.DiscoveryV1().EndpointSlices(app.Namespace).Create, &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: app.Name + "-lab", Namespace: app.Namespace, Labels: map[string]string{
				discoveryv1.LabelServiceName: app.Name, discoveryv1.LabelManagedBy: "lab",
			}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{fmt.Sprintf("10.%d.1.%d", 100+c.Index+1, 10+i)}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
			Ports:       ports,
		}); err != nil {
			return err
		}
	}
	return nil
}
