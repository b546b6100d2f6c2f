package plugin

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/gateway"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// exportService is one Service read from the source cluster.
type exportService struct {
	Name     string
	Ports    []builders.Port
	Versions []string
	Err      error // the Service is missing or cannot be exported
}

// source is what export reads from the source cluster, with one List per
// kind for all the Services of the run.
type source struct {
	Context string
	Name    string // the cluster name in labels
	Gateway gateway.Address
	// Locality is region[/zone] of the gateway, for the endpoints; "" when
	// unknown.
	Locality string
	Services []exportService
	Kube     kubernetes.Interface
	Dynamic  dynamic.Interface
	// Rules are the DestinationRules of the namespace, by namespace/name.
	Rules map[string]*unstructured.Unstructured
}

func (o *ExportOptions) readSource(ctx context.Context) (*source, error) {
	context, cfg, err := restConfigFor(o.factory, o.From, o.WrapConfig)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", context, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", context, err)
	}
	ns := o.namespace
	src := &source{Context: context, Name: o.FromClusterName, Kube: kube, Dynamic: dyn}

	svcs, err := kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{LabelSelector: o.Selector})
	if err != nil {
		return nil, fmt.Errorf("%s: list Services in namespace %s: %w; check --from and -n", context, ns, err)
	}
	selected, err := selectServices(svcs.Items, o.Services, o.Selector, o.All)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", context, err)
	}
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: list Pods in namespace %s (for the versions): %w", context, ns, err)
	}
	var slices []discoveryv1.EndpointSlice
	if l, err := kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{}); err == nil {
		slices = l.Items
	} else if !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("%s: list EndpointSlices in namespace %s: %w", context, ns, err)
	}
	for _, name := range o.Services {
		if _, ok := selected[name]; !ok {
			src.Services = append(src.Services, exportService{Name: name, Err: fmt.Errorf("service %s/%s not found in cluster %s; check the name, -n and --from", ns, name, context)})
		}
	}
	for _, name := range sortedKeys(selected) {
		svc := selected[name]
		es := exportService{Name: name}
		es.Ports, es.Err = builders.PortsFor(svc)
		es.Versions = builders.Versions(svc, pods.Items, slices, o.VersionLabel)
		src.Services = append(src.Services, es)
	}

	if o.override != nil {
		src.Gateway = *o.override
	} else {
		src.Gateway, err = gateway.Discover(ctx, kube, gateway.Options{Service: o.GatewayService, Namespace: o.GatewayNS})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", context, err)
		}
	}
	if src.Locality = o.Locality; src.Locality == "" {
		locality, how, err := gateway.Locality(ctx, kube, src.Gateway)
		switch {
		case err != nil:
			o.warn("%s: %v", context, err)
		case locality == "":
			o.warn("%s: no locality for the gateway's endpoint (%s have no common %s label): Istio's locality load balancing cannot tell this source apart; pass --locality REGION[/ZONE]", context, how, gateway.RegionLabel)
		default:
			src.Locality = locality
		}
	}
	src.Rules, err = listByName(ctx, dyn, rules.DestinationRuleGVR, ns)
	if err != nil {
		return nil, fmt.Errorf("%s: list DestinationRules in namespace %s: %w; are Istio's CRDs installed?", context, ns, err)
	}
	return src, nil
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

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
