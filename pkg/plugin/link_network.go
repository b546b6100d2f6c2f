package plugin

import (
	"context"
	"fmt"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/gateway"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// networks labels the link's clusters that --network names with their
// network: istio-system, which tells istiod its cluster's network, and the
// east-west gateway Service, which tells every istiod that gateway serves
// the network. What the label was before is kept on the object, so that
// the last link that needs the label puts it back.
func (r *linkRun) networks(ctx context.Context, mp *mesh.MultiPrimaryRecord) error {
	for _, c := range []struct {
		cluster *cli.Cluster
		a       applier
	}{{r.to, r.toA}, {r.from, r.fromA}} {
		network, ok := r.o.networks[c.cluster.Context]
		if !ok {
			continue
		}
		ns, err := c.cluster.Kube.CoreV1().Namespaces().Get(ctx, rules.IstioSystemNamespace, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("%s: read namespace istio-system: %w", c.cluster.Context, err)
		}
		if err := r.labelNetwork(ctx, c.cluster, c.a, ns, "namespace istio-system", network, mp); err != nil {
			return err
		}
		svc, err := gateway.Service(ctx, c.cluster.Kube, gateway.Options{Service: r.gatewayServiceFor(c.cluster), Namespace: r.o.GatewayNamespace})
		if err != nil || !gateway.IsEastWest(svc) && r.gatewayServiceFor(c.cluster) == "" {
			continue // no east-west gateway: the gateway step said what to install
		}
		if err := r.labelNetwork(ctx, c.cluster, c.a, svc, "Service "+svc.Namespace+"/"+svc.Name, network, mp); err != nil {
			return err
		}
	}
	return nil
}

// gatewayServiceFor is --gateway-service for the called cluster, which it
// names; other clusters' gateways are found.
func (r *linkRun) gatewayServiceFor(c *cli.Cluster) string {
	if c == r.to {
		return r.o.GatewayService
	}
	return ""
}

// labelNetwork sets the network label of a Namespace or Service.
func (r *linkRun) labelNetwork(ctx context.Context, c *cli.Cluster, a applier, obj metav1.Object, what, network string, mp *mesh.MultiPrimaryRecord) error {
	labels, annotations := obj.GetLabels(), obj.GetAnnotations()
	if labels == nil {
		labels = map[string]string{}
	}
	if annotations == nil {
		annotations = map[string]string{}
	}
	old := labels[mesh.NetworkLabel]
	mp.NetworkLabelled = append(mp.NetworkLabelled, c.Context+": "+what)
	if !mesh.SetNetwork(labels, annotations, network) {
		r.log.line(c.Context, stepOK, "network", fmt.Sprintf("%s is labelled %s=%s", what, mesh.NetworkLabel, network))
		return nil
	}
	obj.SetLabels(labels)
	obj.SetAnnotations(annotations)
	if err := r.savePending(ctx); err != nil {
		return err
	}
	var err error
	switch o := obj.(type) {
	case *corev1.Namespace:
		o.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}
		r.log.object(o)
		if a.writes() {
			_, err = c.Kube.CoreV1().Namespaces().Update(ctx, o, metav1.UpdateOptions{FieldManager: rules.FieldManager, DryRun: a.dryRunOpt()})
		}
	case *corev1.Service:
		o.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}
		r.log.object(o)
		if a.writes() {
			_, err = c.Kube.CoreV1().Services(o.Namespace).Update(ctx, o, metav1.UpdateOptions{FieldManager: rules.FieldManager, DryRun: a.dryRunOpt()})
		}
	default:
		return fmt.Errorf("label %s: unexpected %T", what, obj)
	}
	if err != nil {
		return fmt.Errorf("%s: label %s %s=%s: %w; run link again", c.Context, what, mesh.NetworkLabel, network, err)
	}
	r.log.line(c.Context, stepChanged, "network", fmt.Sprintf("%s labelled %s=%s (was %q)", what, mesh.NetworkLabel, network, old))
	return nil
}

// networkOf is the network a cluster of the link is on: what --network
// gives it, else its istio-system label ("" when unknown).
func (r *linkRun) networkOf(ctx context.Context, c *cli.Cluster) string {
	if n, ok := r.o.networks[c.Context]; ok {
		return n
	}
	ns, err := c.Kube.CoreV1().Namespaces().Get(ctx, rules.IstioSystemNamespace, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return ns.Labels[mesh.NetworkLabel]
}

// eastWestMissing says, for a multi-primary link to a cluster on another
// network that has no east-west gateway, exactly how to install Istio's:
// the helm command and the IstioOperator of Istio's multi-network guide
// (with -o, among the printed objects; else in the warning).
func (r *linkRun) eastWestMissing(network string, found string) error {
	r.log.line(r.to.Context, stepNeeded, "gateway", fmt.Sprintf("no east-west gateway (Service istio-system/%s, or one selecting istio=%s) for %s's network; %s is not used for a multi-network link", gateway.EastWestService, gateway.EastWestSelector, r.to.Context, found))
	if network == "" {
		fmt.Fprintf(r.o.ErrOut, "Warning: %s: install Istio's east-west gateway for its network, and name the network with --network %s=NAME, then run link again\n", r.to.Context, r.to.Context)
		return nil
	}
	iop := mesh.EastWestGatewayOperator(network, "")
	msg := fmt.Sprintf("Warning: %s: install Istio's east-west gateway for network %s, then run link again:\n  %s\nor istioctl install -f with this IstioOperator", r.to.Context, network, mesh.EastWestGatewayHelmCommand(network))
	if r.o.Output != "" {
		r.log.object(iop)
		fmt.Fprintln(r.o.ErrOut, msg+" (printed with the objects)")
		return nil
	}
	b, err := yaml.Marshal(iop.Object)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.o.ErrOut, "%s:\n%s", msg, b)
	return nil
}
