package export

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/gateway"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// service is one Service read from the source cluster.
type service struct {
	Name     string
	Ports    []builders.Port
	Versions []string
	Err      error // the Service is missing or cannot be exported
}

// source is what export reads from the source cluster, with one List per
// kind for all the Services of the run.
type source struct {
	*cli.Cluster
	Name    string // the cluster name in labels
	Gateway gateway.Address
	// Locality is region[/zone] of the gateway, for the endpoints; "" when
	// unknown.
	Locality string
	Services []service
	// Rules are the DestinationRules of the namespace, by namespace/name.
	Rules map[string]*unstructured.Unstructured
}

// exportable are the Services that can be exported.
func (s *source) exportable() []service {
	var out []service
	for _, svc := range s.Services {
		if svc.Err == nil {
			out = append(out, svc)
		}
	}
	return out
}

// builderSource is the source as an endpoint of svc's entry.
func (s *source) builderSource(svc service) builders.Source {
	return builders.Source{Cluster: s.Name, GatewayHost: s.Gateway.Host, GatewayPort: s.Gateway.Port, Versions: svc.Versions, Locality: s.Locality}
}

func readSource(ctx context.Context, f cli.Factory, req Request) (*source, error) {
	c, err := f.Cluster(req.From)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	src := &source{Cluster: c, Name: req.ClusterName}
	if src.Services, err = readServices(ctx, c, req); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Context, err)
	}
	if err := src.readGateway(ctx, req); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Context, err)
	}
	src.Rules, err = listByName(ctx, c.Dynamic, rules.DestinationRuleGVR, req.Namespace)
	if err != nil {
		return nil, fmt.Errorf("%s: list DestinationRules in namespace %s: %w; are Istio's CRDs installed?", c.Context, req.Namespace, err)
	}
	return src, nil
}

// readServices reads the Services of the run with their ports and
// versions; a named Service that is missing is one with an Err.
func readServices(ctx context.Context, c *cli.Cluster, req Request) ([]service, error) {
	ns := req.Namespace
	svcs, err := c.Kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{LabelSelector: req.Selector})
	if err != nil {
		return nil, fmt.Errorf("list Services in namespace %s: %w; check --from and -n", ns, err)
	}
	selected, err := selectServices(svcs.Items, req.Services, req.Selector, req.All)
	if err != nil {
		return nil, err
	}
	pods, err := c.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list Pods in namespace %s (for the versions): %w", ns, err)
	}
	var slices []discoveryv1.EndpointSlice
	if l, err := c.Kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{}); err == nil {
		slices = l.Items
	} else if !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("list EndpointSlices in namespace %s: %w", ns, err)
	}
	var out []service
	for _, name := range req.Services {
		if _, ok := selected[name]; !ok {
			out = append(out, service{Name: name, Err: fmt.Errorf("service %s/%s not found in cluster %s; check the name, -n and --from", ns, name, c.Context)})
		}
	}
	for _, name := range sortedKeys(selected) {
		svc := selected[name]
		es := service{Name: name}
		es.Ports, es.Err = builders.PortsFor(svc)
		es.Versions = builders.Versions(svc, pods.Items, slices, req.VersionLabel)
		out = append(out, es)
	}
	return out, nil
}

// readGateway finds the source's gateway and its locality, unless the
// request gives them.
func (s *source) readGateway(ctx context.Context, req Request) error {
	if req.GatewayAddress != nil {
		s.Gateway = *req.GatewayAddress
	} else {
		var err error
		if s.Gateway, err = gateway.Discover(ctx, s.Kube, req.Gateway); err != nil {
			return err
		}
	}
	if s.Locality = req.Locality; s.Locality != "" {
		return nil
	}
	locality, how, err := gateway.Locality(ctx, s.Kube, s.Gateway)
	switch {
	case err != nil:
		warn(req.Warnings, "%s: %v", s.Context, err)
	case locality == "":
		warn(req.Warnings, "%s: no locality for the gateway's endpoint (%s have no common %s label): Istio's locality load balancing cannot tell this source apart; pass --locality REGION[/ZONE]", s.Context, how, gateway.RegionLabel)
	default:
		s.Locality = locality
	}
	return nil
}

// selectServices picks the Services of the run: the named ones, or all the
// listed ones (already filtered by the selector).
func selectServices(items []corev1.Service, names []string, selector string, all bool) (map[string]*corev1.Service, error) {
	out := map[string]*corev1.Service{}
	for i := range items {
		if len(names) > 0 && !slices.Contains(names, items[i].Name) {
			continue
		}
		// An ExternalName Service is a DNS alias, with nothing behind it
		// for a gateway to route to; it is exported only when named.
		if len(names) == 0 && items[i].Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		out[items[i].Name] = &items[i]
	}
	if len(out) == 0 && (selector != "" || all) {
		return nil, fmt.Errorf("no Service matches %s; check -l, -n and --from", describeSelection(selector))
	}
	return out, nil
}

func describeSelection(selector string) string {
	if selector == "" {
		return "--all"
	}
	return "-l " + selector
}
