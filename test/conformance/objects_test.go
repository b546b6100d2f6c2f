package conformance

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// The Istio kinds pilot reads for routing, at the version the product
// writes (v1alpha3, v1beta1 and v1 share one schema).
var istioGVRs = []schema.GroupVersionResource{
	{Group: "networking.istio.io", Version: "v1", Resource: "serviceentries"},
	{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"},
	{Group: "networking.istio.io", Version: "v1", Resource: "gateways"},
	{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"},
}

const (
	managedByLabel = "app.kubernetes.io/managed-by"
	managedByValue = "kubectl-mesh"
	tlsModeLabel   = "security.istio.io/tlsMode"
	istioSystem    = "istio-system"
)

type labClient struct {
	kube kubernetes.Interface
	dyn  dynamic.Interface
}

// labClients makes a client per kubeconfig context (one per lab cluster).
func labClients(kubeconfig string, contexts []string) (map[string]labClient, error) {
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		return nil, err
	}
	out := map[string]labClient{}
	for _, name := range contexts {
		rc, err := clientcmd.NewNonInteractiveClientConfig(*cfg, name, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("kubeconfig context %s: %w", name, err)
		}
		rc.QPS, rc.Burst = 100, 200
		kube, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return nil, err
		}
		dyn, err := dynamic.NewForConfig(rc)
		if err != nil {
			return nil, err
		}
		out[name] = labClient{kube: kube, dyn: dyn}
	}
	return out, nil
}

// clusterObjects is one cluster as pilot gets it.
type clusterObjects struct {
	name            string
	namespaces      []corev1.Namespace
	services        []corev1.Service
	pods            []corev1.Pod
	nodes           []corev1.Node
	serviceAccounts []corev1.ServiceAccount
	// deployments are read only to give the gateway Deployments their
	// pods; pilot does not read Deployments.
	deployments    []appsv1.Deployment
	endpointSlices []discoveryv1.EndpointSlice
	istio          []*unstructured.Unstructured
}

// readCluster lists what pilot reads, in all namespaces.
func readCluster(ctx context.Context, c labClient, name string) (*clusterObjects, error) {
	out := &clusterObjects{name: name}
	core, all := c.kube.CoreV1(), metav1.ListOptions{}
	ns, err := core.Namespaces().List(ctx, all)
	if err != nil {
		return nil, err
	}
	svcs, err := core.Services("").List(ctx, all)
	if err != nil {
		return nil, err
	}
	pods, err := core.Pods("").List(ctx, all)
	if err != nil {
		return nil, err
	}
	nodes, err := core.Nodes().List(ctx, all)
	if err != nil {
		return nil, err
	}
	sas, err := core.ServiceAccounts("").List(ctx, all)
	if err != nil {
		return nil, err
	}
	deps, err := c.kube.AppsV1().Deployments("").List(ctx, all)
	if err != nil {
		return nil, err
	}
	out.namespaces, out.services, out.pods, out.nodes = ns.Items, svcs.Items, pods.Items, nodes.Items
	out.serviceAccounts, out.deployments = sas.Items, deps.Items
	for i := range out.namespaces {
		stripMeta(&out.namespaces[i].ObjectMeta)
		// A namespace's status (phase Active) is the API server's.
		out.namespaces[i].Status = corev1.NamespaceStatus{}
	}
	// Services and Nodes keep their status: it is the furniture a cloud
	// controller and a kubelet would have set (load balancer ingress, node
	// addresses), which is how gateways are reached.
	for i := range out.services {
		stripMeta(&out.services[i].ObjectMeta)
	}
	for i := range out.pods {
		stripMeta(&out.pods[i].ObjectMeta)
	}
	for i := range out.nodes {
		stripMeta(&out.nodes[i].ObjectMeta)
	}
	for i := range out.serviceAccounts {
		stripMeta(&out.serviceAccounts[i].ObjectMeta)
	}
	for _, gvr := range istioGVRs {
		list, err := c.dyn.Resource(gvr).List(ctx, all)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", gvr.Resource, err)
		}
		for i := range list.Items {
			u := &list.Items[i]
			for _, f := range []string{"managedFields", "resourceVersion", "uid", "creationTimestamp", "generation"} {
				unstructured.RemoveNestedField(u.Object, "metadata", f)
			}
			// Status is the API server's (and istiod's, e.g. auto-allocated
			// addresses), not the product's.
			unstructured.RemoveNestedField(u.Object, "status")
			out.istio = append(out.istio, u)
		}
	}
	return out, nil
}

// stripMeta removes what the API server, not the writer, put in metadata.
func stripMeta(m *metav1.ObjectMeta) {
	m.ManagedFields, m.ResourceVersion, m.UID, m.Generation = nil, "", "", 0
	m.CreationTimestamp = metav1.Time{}
}

func (c *clusterObjects) deepCopy() *clusterObjects {
	out := &clusterObjects{name: c.name}
	out.namespaces = copyEach(c.namespaces, (*corev1.Namespace).DeepCopy)
	out.services = copyEach(c.services, (*corev1.Service).DeepCopy)
	out.pods = copyEach(c.pods, (*corev1.Pod).DeepCopy)
	out.nodes = copyEach(c.nodes, (*corev1.Node).DeepCopy)
	out.serviceAccounts = copyEach(c.serviceAccounts, (*corev1.ServiceAccount).DeepCopy)
	out.deployments = copyEach(c.deployments, (*appsv1.Deployment).DeepCopy)
	out.endpointSlices = copyEach(c.endpointSlices, (*discoveryv1.EndpointSlice).DeepCopy)
	for _, u := range c.istio {
		out.istio = append(out.istio, u.DeepCopy())
	}
	return out
}

func copyEach[T any](in []T, deepCopy func(*T) *T) []T {
	out := make([]T, len(in))
	for i := range in {
		out[i] = *deepCopy(&in[i])
	}
	return out
}

// withKubeletAndInjector returns a copy of the cluster with what a running
// cluster adds to what was applied: the lab has no kubelet, no controller
// manager and no sidecar injector, so nothing ever runs the Pods the lab
// created, and pilot — which builds endpoints from EndpointSlices joined to
// running, ready Pods, and puts only pods labelled tlsMode=istio behind a
// gateway's passthrough clusters (TestPilotFactsEndpointSources) — would see
// no endpoint at all. So, in what is handed to pilot and never in the lab:
//   - the Deployment controller: one Pod per gateway Deployment of
//     istio-system, with the Deployment's pod template labels;
//   - the scheduler and kubelet: every Pod on a node, Running and Ready,
//     with an IP deterministic per cluster (index) and pod;
//   - the sidecar injector: in namespaces with injection enabled, the
//     labels injection sets (tlsMode, canonical name and revision);
//   - the EndpointSlice controller: one slice per Service with a selector,
//     listing the ready Pods it selects on the Service's target ports.
func (c *clusterObjects) withKubeletAndInjector(index int) *clusterObjects {
	out := c.deepCopy()
	for _, d := range out.deployments {
		if d.Namespace != istioSystem || !strings.HasSuffix(d.Name, "gateway") {
			continue
		}
		out.pods = append(out.pods, corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-0", Namespace: d.Namespace, Labels: gatewayPodLabels(d)},
			Spec:       *d.Spec.Template.Spec.DeepCopy(),
		})
	}
	slices.SortFunc(out.pods, func(a, b corev1.Pod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	injected := map[string]bool{}
	for _, ns := range out.namespaces {
		injected[ns.Name] = ns.Labels["istio-injection"] == "enabled" || ns.Labels["istio.io/rev"] != ""
	}
	for i := range out.pods {
		p := &out.pods[i]
		ip := fmt.Sprintf("10.%d.%d.%d", index+1, i/200, i%200+10)
		if len(out.nodes) > 0 {
			n := out.nodes[i%len(out.nodes)]
			p.Spec.NodeName = n.Name
			p.Status.HostIP = nodeAddress(n, corev1.NodeInternalIP)
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
		p.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue},
		}
		if injected[p.Namespace] && p.Labels["sidecar.istio.io/inject"] != "false" {
			if p.Labels == nil {
				p.Labels = map[string]string{}
			}
			p.Labels[tlsModeLabel] = "istio"
			p.Labels["service.istio.io/canonical-name"] = cmp.Or(p.Labels["app"], p.Name)
			p.Labels["service.istio.io/canonical-revision"] = cmp.Or(p.Labels["version"], "latest")
		}
	}
	out.endpointSlices = nil
	for _, svc := range out.services {
		if len(svc.Spec.Selector) == 0 {
			continue // its endpoints are not the controller's (e.g. default/kubernetes)
		}
		out.endpointSlices = append(out.endpointSlices, endpointSlice(svc, out.podsSelectedBy(svc.Namespace, svc.Spec.Selector)))
	}
	return out
}

// gatewayPodLabels are the labels of a gateway Deployment's pods: its pod
// template labels. Every Istio gateway Deployment (Helm charts and istioctl
// alike) also labels its pods istio=<name without "istio-">, which is what
// gateway Services and Gateways select; the lab's furniture Deployments
// carry only app=, so the label is added here when missing.
func gatewayPodLabels(d appsv1.Deployment) map[string]string {
	l := maps.Clone(d.Spec.Template.Labels)
	if l == nil {
		l = map[string]string{}
	}
	if _, ok := l["istio"]; !ok && strings.HasPrefix(d.Name, "istio-") {
		l["istio"] = strings.TrimPrefix(d.Name, "istio-")
	}
	return l
}

func nodeAddress(n corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range n.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return ""
}

// endpointSlice is what the EndpointSlice controller writes for svc. Ports
// are the Service's target ports; a named target port is looked up in the
// first pod (the controller would split pods that disagree into several
// slices; the lab's pods never do).
func endpointSlice(svc corev1.Service, pods []*corev1.Pod) discoveryv1.EndpointSlice {
	es := discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      svc.Name + "-lab",
			Namespace: svc.Namespace,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: svc.Name,
				discoveryv1.LabelManagedBy:   "endpointslice-controller.k8s.io",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, sp := range svc.Spec.Ports {
		port, ok := sp.TargetPort.IntVal, sp.TargetPort.Type == intstr.Int
		if sp.TargetPort.Type == intstr.String && len(pods) > 0 {
			port, ok = containerPort(pods[0], sp.TargetPort.StrVal)
		}
		if sp.TargetPort.Type == intstr.Int && port == 0 {
			port = sp.Port // an unset target port is the port
		}
		if !ok {
			continue
		}
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{
			Name: ptr.To(sp.Name), Port: ptr.To(port), Protocol: ptr.To(cmp.Or(sp.Protocol, corev1.ProtocolTCP)), AppProtocol: sp.AppProtocol,
		})
	}
	for _, p := range pods {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{p.Status.PodIP},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			NodeName:   ptr.To(p.Spec.NodeName),
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name},
		})
	}
	return es
}

func containerPort(p *corev1.Pod, name string) (int32, bool) {
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == name {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}

// podsSelectedBy are the pods of namespace ns that selector selects.
func (c *clusterObjects) podsSelectedBy(ns string, selector map[string]string) []*corev1.Pod {
	var out []*corev1.Pod
	sel := labels.SelectorFromSet(selector)
	for i := range c.pods {
		if p := &c.pods[i]; p.Namespace == ns && sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out
}

func (c *clusterObjects) service(ns, name string) *corev1.Service {
	for i := range c.services {
		if s := &c.services[i]; s.Namespace == ns && s.Name == name {
			return s
		}
	}
	return nil
}

// podNameByIP names the pod with that IP, for failure messages and the
// table of landed pods.
func (c *clusterObjects) podNameByIP(ip string) string {
	for _, p := range c.pods {
		if p.Status.PodIP == ip {
			return p.Name
		}
	}
	return ip + " (no pod)"
}

// istioOfKind are the cluster's Istio objects of one kind.
func (c *clusterObjects) istioOfKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range c.istio {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

// kubeObjects are the Kubernetes objects handed to pilot's fake registry.
func (c *clusterObjects) kubeObjects() []runtime.Object {
	var out []runtime.Object
	for i := range c.namespaces {
		out = append(out, &c.namespaces[i])
	}
	for i := range c.services {
		out = append(out, &c.services[i])
	}
	for i := range c.pods {
		out = append(out, &c.pods[i])
	}
	for i := range c.nodes {
		out = append(out, &c.nodes[i])
	}
	for i := range c.serviceAccounts {
		out = append(out, &c.serviceAccounts[i])
	}
	for i := range c.endpointSlices {
		out = append(out, &c.endpointSlices[i])
	}
	return out
}

// istioYAML is the cluster's Istio objects as one multi-document YAML.
func (c *clusterObjects) istioYAML() (string, error) {
	docs := make([]string, 0, len(c.istio))
	for _, u := range c.istio {
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			return "", fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		docs = append(docs, string(b))
	}
	return joinYAML(docs...), nil
}
