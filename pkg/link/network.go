package link

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/gateway"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// networks labels the link's clusters that Networks names with their
// network: istio-system, which tells istiod its cluster's network, and the
// east-west gateway Service, which tells every istiod that gateway serves
// the network. What the label was before is kept on the object, so that
// the last link that needs the label puts it back.
func (r *run) networks(ctx context.Context, mp *mesh.MultiPrimaryRecord) error {
	for _, c := range []*cli.Cluster{r.to, r.from} {
		network, ok := r.Networks[c.Context]
		if !ok {
			continue
		}
		ns, err := c.Kube.CoreV1().Namespaces().Get(ctx, rules.IstioSystemNamespace, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("%s: read namespace istio-system: %w", c.Context, err)
		}
		if err := r.labelNetwork(ctx, c, ns, "namespace istio-system", network, mp); err != nil {
			return err
		}
		svc, err := gateway.Service(ctx, c.Kube, gateway.Options{Service: r.gatewayServiceFor(c), Namespace: r.GatewayNamespace})
		if err != nil || !gateway.IsEastWest(svc) && r.gatewayServiceFor(c) == "" {
			continue // no east-west gateway: the gateway step said what to install
		}
		if err := r.labelNetwork(ctx, c, svc, "Service "+svc.Namespace+"/"+svc.Name, network, mp); err != nil {
			return err
		}
	}
	return nil
}

// gatewayServiceFor is GatewayService for the called cluster, which it
// names; other clusters' gateways are found.
func (r *run) gatewayServiceFor(c *cli.Cluster) string {
	if c == r.to {
		return r.GatewayService
	}
	return ""
}

// labelNetwork sets the network label of a Namespace or Service.
func (r *run) labelNetwork(ctx context.Context, c *cli.Cluster, obj metav1.Object, what, network string, mp *mesh.MultiPrimaryRecord) error {
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
		r.Log.Line(c.Context, OK, "network", fmt.Sprintf("%s is labelled %s=%s", what, mesh.NetworkLabel, network))
		return nil
	}
	obj.SetLabels(labels)
	obj.SetAnnotations(annotations)
	if err := r.savePending(ctx); err != nil {
		return err
	}
	if err := updateLabelled(ctx, r.Log, c, r.DryRun, obj); err != nil {
		return fmt.Errorf("%s: label %s %s=%s: %w; run link again", c.Context, what, mesh.NetworkLabel, network, err)
	}
	r.Log.Line(c.Context, Changed, "network", fmt.Sprintf("%s labelled %s=%s (was %q)", what, mesh.NetworkLabel, network, old))
	return nil
}

// updateLabelled writes a Namespace or Service whose labels link or unlink
// changed. It is an update carrying the resourceVersion read, so that a
// concurrent change fails it rather than being overwritten.
func updateLabelled(ctx context.Context, log *StepLog, c *cli.Cluster, dry cli.DryRun, obj metav1.Object) error {
	opts := metav1.UpdateOptions{FieldManager: rules.FieldManager, DryRun: dry.Options()}
	var err error
	switch o := obj.(type) {
	case *corev1.Namespace:
		o.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}
		log.Object(o)
		if dry.Writes() {
			_, err = c.Kube.CoreV1().Namespaces().Update(ctx, o, opts)
		}
	case *corev1.Service:
		o.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}
		log.Object(o)
		if dry.Writes() {
			_, err = c.Kube.CoreV1().Services(o.Namespace).Update(ctx, o, opts)
		}
	default:
		return fmt.Errorf("unexpected %T", obj)
	}
	return err
}

// networkOf is the network a cluster of the link is on: what Networks
// gives it, else its istio-system label ("" when unknown).
func (r *run) networkOf(ctx context.Context, c *cli.Cluster) string {
	if n, ok := r.Networks[c.Context]; ok {
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
func (r *run) eastWestMissing(network string, found string) error {
	r.Log.Line(r.to.Context, Needed, "gateway", fmt.Sprintf("no east-west gateway (Service istio-system/%s, or one selecting istio=%s) for %s's network; %s is not used for a multi-network link", gateway.EastWestService, gateway.EastWestSelector, r.to.Context, found))
	if network == "" {
		r.Log.Warnf(r.to.Context, "install Istio's east-west gateway for its network, and name the network with --network %s=NAME, then run link again", r.to.Context)
		return nil
	}
	iop := mesh.EastWestGatewayOperator(network, "")
	msg := fmt.Sprintf("install Istio's east-west gateway for network %s, then run link again:\n  %s\nor istioctl install -f with this IstioOperator", network, mesh.EastWestGatewayHelmCommand(network))
	if r.Log.Collect {
		r.Log.Object(iop)
		r.Log.Warnf(r.to.Context, "%s (printed with the objects)", msg)
		return nil
	}
	b, err := yaml.Marshal(iop.Object)
	if err != nil {
		return err
	}
	r.Log.Warnf(r.to.Context, "%s:\n%s", msg, b)
	return nil
}
