package status

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// readRouteObjects reads what the route checks need beyond the entries and
// rules: one List per kind, whatever the number of entries. The pods and
// nodes only say which pods a gateway Service reaches and where its node
// ports are; when they cannot be read (no kubelet, no RBAC) the Service's
// selector stands for its pods and node ports are not matched.
func readRouteObjects(ctx context.Context, c *cli.Cluster, f *mesh.ClusterFacts) error {
	v := &f.Routes
	v.Cluster = f.Status.Context
	gws, err := c.Dynamic.Resource(rules.GatewayGVR).List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsNotFound(err):
		// No Gateway CRD: no passthrough server either.
	case err != nil:
		return fmt.Errorf("list Gateways: %w", err)
	default:
		for i := range gws.Items {
			v.Gateways = append(v.Gateways, mesh.PassthroughServersFrom(&gws.Items[i])...)
		}
	}
	svcs, err := c.Kube.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list Services: %w", err)
	}
	v.Services = map[string][]uint32{}
	var gateways []*corev1.Service
	for i := range svcs.Items {
		s := &svcs.Items[i]
		ports := make([]uint32, 0, len(s.Spec.Ports))
		for _, p := range s.Spec.Ports {
			ports = append(ports, uint32(p.Port)) //nolint:gosec // a Service port is 1..65535
		}
		v.Services[s.Namespace+"/"+s.Name] = ports
		if len(gatewayPorts(s)) > 0 {
			gateways = append(gateways, s)
		}
	}
	if len(gateways) == 0 {
		return nil
	}
	pods := map[string][]corev1.Pod{}
	var nodeAddrs []string
	for _, s := range gateways {
		if _, ok := pods[s.Namespace]; ok {
			continue
		}
		list, err := c.Kube.CoreV1().Pods(s.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			pods[s.Namespace] = nil
			continue
		}
		pods[s.Namespace] = list.Items
	}
	nodes, err := c.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsForbidden(err):
	case err != nil:
		return fmt.Errorf("list Nodes: %w", err)
	default:
		for _, n := range nodes.Items {
			for _, a := range n.Status.Addresses {
				if (a.Type == corev1.NodeExternalIP || a.Type == corev1.NodeInternalIP) && a.Address != "" && !slices.Contains(nodeAddrs, a.Address) {
					nodeAddrs = append(nodeAddrs, a.Address)
				}
			}
		}
	}
	for _, s := range gateways {
		v.GatewayServices = append(v.GatewayServices, gatewayService(s, pods[s.Namespace], nodeAddrs))
	}
	return nil
}

// gatewayPorts are the ports of a LoadBalancer or NodePort Service that
// lead to a gateway's 15443, by port or target port.
func gatewayPorts(s *corev1.Service) []corev1.ServicePort {
	if s.Spec.Type != corev1.ServiceTypeLoadBalancer && s.Spec.Type != corev1.ServiceTypeNodePort {
		return nil
	}
	var out []corev1.ServicePort
	for _, p := range s.Spec.Ports {
		if p.Port == rules.GatewayPort || p.TargetPort.IntValue() == rules.GatewayPort {
			out = append(out, p)
		}
	}
	return out
}

func gatewayService(s *corev1.Service, pods []corev1.Pod, nodeAddrs []string) mesh.GatewayService {
	g := mesh.GatewayService{Namespace: s.Namespace, Name: s.Name, Selector: s.Spec.Selector, Network: s.Labels[mesh.NetworkLabel]}
	for _, in := range s.Status.LoadBalancer.Ingress {
		for _, a := range []string{in.IP, in.Hostname} {
			if a != "" {
				g.Addresses = append(g.Addresses, a)
			}
		}
	}
	g.Addresses = append(g.Addresses, s.Spec.ExternalIPs...)
	for _, p := range gatewayPorts(s) {
		g.Ports = append(g.Ports, uint32(p.Port)) //nolint:gosec // a Service port is 1..65535
		if p.NodePort != 0 {
			g.NodePorts = append(g.NodePorts, uint32(p.NodePort)) //nolint:gosec // a node port is 1..65535
		}
	}
	if len(g.NodePorts) > 0 {
		g.NodeAddresses = nodeAddrs
	}
	if len(s.Spec.Selector) > 0 {
		sel := labels.SelectorFromSet(s.Spec.Selector)
		for _, p := range pods {
			if p.DeletionTimestamp == nil && sel.Matches(labels.Set(p.Labels)) {
				g.PodLabels = append(g.PodLabels, p.Labels)
			}
		}
	}
	return g
}
