package link

import (
	"context"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/gateway"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// gateway finds to's gateway (the east-west gateway when there is one,
// else the ingress gateway), records its address and makes sure it passes
// mTLS for *.local services through on 15443: the remote SNI that export
// writes names the called cluster's own services, and an AUTO_PASSTHROUGH
// server only routes SNIs of services its hosts cover. A *.global Gateway
// an older link wrote routes nothing and is removed.
//
// A multi-primary link to a cluster on the same network needs no gateway:
// istiod gives the peer's pods as endpoints. One to another network uses
// Istio's east-west gateway only, and says how to install it when missing.
func (r *run) gateway(ctx context.Context) error {
	var network string
	if r.MultiPrimary {
		network = r.networkOf(ctx, r.to)
		if from := r.networkOf(ctx, r.from); network != "" && network == from {
			r.Log.Line(r.to.Context, Skipped, "gateway", fmt.Sprintf("both clusters are on network %s: istiod sends traffic to the peer's pods directly", network))
			return nil
		}
	}
	svc, err := gateway.Service(ctx, r.to.Kube, gateway.Options{Service: r.GatewayService, Namespace: r.GatewayNamespace})
	if r.MultiPrimary && err == nil && r.GatewayService == "" && r.GatewayAddress == nil && !gateway.IsEastWest(svc) {
		return r.eastWestMissing(network, "Service "+svc.Namespace+"/"+svc.Name)
	}
	var addr gateway.Address
	switch {
	case r.GatewayAddress != nil:
		addr = *r.GatewayAddress
	case err != nil:
		return fmt.Errorf("%s: %w", r.to.Context, err)
	default:
		if addr, err = gateway.Discover(ctx, r.to.Kube, gateway.Options{Service: svc.Name, Namespace: svc.Namespace}); err != nil {
			return fmt.Errorf("%s: %w", r.to.Context, err)
		}
	}
	for _, w := range addr.Warnings {
		r.Log.Warnf(r.to.Context, "%s", w)
	}
	r.record.Gateway, r.record.GatewayMode = addr.String(), string(addr.Mode)
	detail := fmt.Sprintf("%s (%s)", addr, addr.Mode)
	if svc != nil {
		detail += " of Service " + svc.Namespace + "/" + svc.Name
	}
	r.Log.Line(r.to.Context, OK, "gateway address", detail)
	if svc == nil {
		r.Log.Line(r.to.Context, Skipped, "gateway "+mesh.LocalHosts, fmt.Sprintf("--gateway-address given and no gateway Service found (%v): make sure the gateway behind it has a Gateway server on %d, TLS AUTO_PASSTHROUGH, hosts %s", err, rules.GatewayPort, mesh.LocalHosts))
		return nil
	}
	return r.ensureLocalPassthrough(ctx, svc)
}

// gatewayPodLabels are the labels of the pods behind a gateway Service. A
// cluster without running pods (none scheduled yet) gives the Service's
// selector, which every such pod will carry.
func gatewayPodLabels(ctx context.Context, c *cli.Cluster, svc *corev1.Service) (map[string]string, error) {
	if len(svc.Spec.Selector) == 0 {
		return nil, fmt.Errorf("gateway Service %s/%s has no selector, so no Gateway can be matched to its pods; pass --gateway-service", svc.Namespace, svc.Name)
	}
	pods, err := c.Kube.CoreV1().Pods(svc.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	if err != nil && !apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("list the pods of gateway Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	if err == nil && len(pods.Items) > 0 {
		return pods.Items[0].Labels, nil
	}
	return svc.Spec.Selector, nil
}

// passthroughSelector is the selector of the Gateway link writes: Istio's
// own istio=<name> label when the gateway Service selects by it (as every
// Istio install does), else the Service's whole selector.
func passthroughSelector(svc *corev1.Service) map[string]string {
	if v, ok := svc.Spec.Selector["istio"]; ok {
		return map[string]string{"istio": v}
	}
	return maps.Clone(svc.Spec.Selector)
}

func (r *run) ensureLocalPassthrough(ctx context.Context, svc *corev1.Service) error {
	step := "gateway " + mesh.LocalHosts
	podLabels, err := gatewayPodLabels(ctx, r.to, svc)
	if err != nil {
		return fmt.Errorf("%s: %w", r.to.Context, err)
	}
	list, err := r.to.Dynamic.Resource(rules.GatewayGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("%s: list Istio Gateways: %w; are Istio's CRDs installed?", r.to.Context, err)
	}
	var existing *unstructured.Unstructured
	serving := ""
	for i := range list.Items {
		gw := &list.Items[i]
		if gw.GetNamespace() == rules.IstioSystemNamespace && gw.GetName() == mesh.CrossNetworkGateway {
			existing = gw
		}
		if serving == "" && mesh.ServesLocalPassthrough(gw, podLabels) {
			serving = gw.GetNamespace() + "/" + gw.GetName()
		}
	}
	if err := r.removeGlobalPassthrough(ctx, list.Items); err != nil {
		return err
	}
	if serving != "" {
		r.Log.Line(r.to.Context, OK, step, fmt.Sprintf("Gateway %s passes %s through on %d for the pods of %s/%s", serving, mesh.LocalHosts, rules.GatewayPort, svc.Namespace, svc.Name))
		return nil
	}
	if existing != nil && !rules.IsManaged(existing.GetLabels()) {
		return fmt.Errorf("%s: Gateway istio-system/%s exists, is not managed by kubectl-mesh and does not pass %s through on %d for the pods of %s/%s; add a server {port: %d, protocol: TLS, tls.mode: AUTO_PASSTHROUGH, hosts: [%q]} selecting them, or delete it so that link writes one",
			r.to.Context, mesh.CrossNetworkGateway, mesh.LocalHosts, rules.GatewayPort, svc.Namespace, svc.Name, rules.GatewayPort, mesh.LocalHosts)
	}
	gw := mesh.PassthroughGateway(mesh.CrossNetworkGateway, mesh.LocalHosts, passthroughSelector(svc))
	r.Log.Object(gw)
	if !slices.Contains(r.record.PeerGatewayCreated, mesh.CrossNetworkGateway) {
		r.record.PeerGatewayCreated = append(r.record.PeerGatewayCreated, mesh.CrossNetworkGateway)
	}
	if err := r.savePending(ctx); err != nil {
		return err
	}
	if _, err := r.toW.Apply(ctx, rules.GatewayGVR, gw); err != nil {
		return fmt.Errorf("%s: %w", r.to.Context, err)
	}
	r.Log.Line(r.to.Context, Changed, step, fmt.Sprintf("Gateway istio-system/%s: TLS AUTO_PASSTHROUGH on %d for %s, selecting %s", mesh.CrossNetworkGateway, rules.GatewayPort, mesh.LocalHosts, labels.Set(passthroughSelector(svc))))
	return nil
}

// removeGlobalPassthrough deletes the *.global Gateways an older link
// wrote (ours only); the one named like ours is replaced by the apply
// that follows.
func (r *run) removeGlobalPassthrough(ctx context.Context, gws []unstructured.Unstructured) error {
	for i := range gws {
		gw := &gws[i]
		if !mesh.IsGlobalPassthrough(gw) || gw.GetNamespace() == rules.IstioSystemNamespace && gw.GetName() == mesh.CrossNetworkGateway {
			continue
		}
		deleted, err := r.toW.DeleteManaged(ctx, rules.GatewayGVR, gw.GetNamespace(), gw.GetName())
		if err != nil {
			return fmt.Errorf("%s: remove the %s Gateway %s/%s of an older link: %w", r.to.Context, mesh.GlobalHosts, gw.GetNamespace(), gw.GetName(), err)
		}
		r.Log.Line(r.to.Context, changedIf(deleted), "gateway "+mesh.GlobalHosts, fmt.Sprintf("Gateway %s/%s removed: no service is called %s, so it routes nothing on Istio ≥ 1.14", gw.GetNamespace(), gw.GetName(), mesh.GlobalHosts))
	}
	return nil
}
