package plugin

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/routing"
)

// versionView is what version routing reads from the cluster: the versions
// it runs, those exports into it provide, and the objects route may change.
type versionView struct {
	svc       routing.Service
	hasLocal  bool     // the Service exists in the cluster
	local     []string // versions of the Pods the Service selects
	global    []string // subsets of the .global rules for the host
	globalRef []string // those rules, namespace/name
	vs        *unstructured.Unstructured
	rules     map[string]*unstructured.Unstructured // DestinationRules of the namespace
}

func (o *RouteOptions) readVersions(ctx context.Context, c *cli.Cluster) (*versionView, error) {
	v := &versionView{svc: routing.Service{Name: o.Service, Namespace: o.namespace}}
	ns := o.namespace
	svc, err := c.Kube.CoreV1().Services(ns).Get(ctx, o.Service, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("%s: read Service %s/%s: %w", c.Context, ns, o.Service, err)
	default:
		v.hasLocal = true
		pods, err := c.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("%s: list Pods in namespace %s (for the versions): %w", c.Context, ns, err)
		}
		var eps []discoveryv1.EndpointSlice
		if l, err := c.Kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{}); err == nil {
			eps = l.Items
		}
		v.local = builders.Versions(svc, pods.Items, eps, o.VersionLabel)
	}
	all, err := c.Dynamic.Resource(rules.DestinationRuleGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: list DestinationRules: %w; are Istio's CRDs installed?", c.Context, err)
	}
	v.rules = map[string]*unstructured.Unstructured{}
	for i := range all.Items {
		dr := &all.Items[i]
		if dr.GetNamespace() == ns {
			v.rules[ns+"/"+dr.GetName()] = dr
		}
		if builders.HostOf(dr) == v.svc.GlobalHost() {
			v.globalRef = append(v.globalRef, dr.GetNamespace()+"/"+dr.GetName())
			for _, s := range builders.SubsetNames(dr) {
				if !slices.Contains(v.global, s) {
					v.global = append(v.global, s)
				}
			}
		}
	}
	slices.Sort(v.global)
	v.vs, err = cli.Writer{Dynamic: c.Dynamic}.Get(ctx, rules.VirtualServiceGVR, ns, routing.Name(o.Service, ns))
	if err != nil {
		return nil, fmt.Errorf("%s: read VirtualService %s/%s: %w", c.Context, ns, routing.Name(o.Service, ns), err)
	}
	return v, nil
}

// resolve finds where version runs: the local host when the cluster has
// Pods of it, else the .global host when an export provides it.
func (v *versionView) resolve(cluster, version, label string) (routing.Destination, error) {
	switch {
	case slices.Contains(v.local, version):
		return routing.Destination{Host: v.svc.LocalHost(), Subset: version}, nil
	case slices.Contains(v.global, version):
		return routing.Destination{Host: v.svc.GlobalHost(), Subset: version}, nil
	}
	local := fmt.Sprintf("no Pod of Service %s/%s in %s has %s=%s (it runs: %s)", v.svc.Namespace, v.svc.Name, cluster, label, version, listOrNone(v.local))
	if !v.hasLocal {
		local = fmt.Sprintf("Service %s/%s does not exist in %s", v.svc.Namespace, v.svc.Name, cluster)
	}
	global := fmt.Sprintf("no export into %s provides it (no DestinationRule for %s)", cluster, v.svc.GlobalHost())
	if len(v.globalRef) > 0 {
		global = fmt.Sprintf("no export into %s provides it (DestinationRule %s has subsets: %s)", cluster, strings.Join(v.globalRef, ", "), listOrNone(v.global))
	}
	return routing.Destination{}, fmt.Errorf("version %s of %s/%s: %s, and %s; check the version, or export it into %s with kubectl mesh export %s -n %s --from <cluster> --to %s",
		version, v.svc.Namespace, v.svc.Name, local, global, cluster, v.svc.Name, v.svc.Namespace, cluster)
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func (v *versionView) destinations(cluster, label string, weights []routing.Weight) ([]routing.Destination, error) {
	out := make([]routing.Destination, 0, len(weights))
	for _, w := range weights {
		d, err := v.resolve(cluster, w.Version, label)
		if err != nil {
			return nil, err
		}
		d.Weight = w.Weight
		out = append(out, d)
	}
	return out, nil
}

// rules works out the VirtualService's new http routes.
func (o *RouteOptions) rules(c *cli.Cluster, v *versionView) ([]map[string]any, error) {
	http := routing.HTTPRules(v.vs)
	if o.Remove {
		out, found := routing.Remove(http, o.match)
		if !found {
			return nil, fmt.Errorf("%s: VirtualService %s/%s has no rule --when %s (its rules: %s)", c.Context, o.namespace, routing.Name(o.Service, o.namespace), o.When, ruleNames(http))
		}
		return out, nil
	}
	var def []routing.Destination
	switch {
	case o.Otherwise != "":
		d, err := v.resolve(c.Context, o.Otherwise, o.VersionLabel)
		if err != nil {
			return nil, fmt.Errorf("--otherwise: %w", err)
		}
		def = []routing.Destination{d}
	case o.match == nil:
		d, err := v.destinations(c.Context, o.VersionLabel, o.weights)
		if err != nil {
			return nil, fmt.Errorf("--to: %w", err)
		}
		def = d
	case !routing.HasDefault(http):
		if !v.hasLocal {
			return nil, fmt.Errorf("%s: Service %s/%s does not exist here, so requests no rule matches have nowhere to go; give --otherwise VERSION of a version exports provide", c.Context, o.namespace, o.Service)
		}
		def = []routing.Destination{{Host: v.svc.LocalHost()}}
	}
	if o.match != nil {
		dests, err := v.destinations(c.Context, o.VersionLabel, o.weights)
		if err != nil {
			return nil, fmt.Errorf("--to: %w", err)
		}
		http = routing.Upsert(http, routing.Rule{Match: o.match, Destinations: dests})
	}
	if def != nil {
		http = routing.Upsert(http, routing.Rule{Destinations: def})
	}
	return http, nil
}

func ruleNames(http []map[string]any) string {
	var names []string
	for _, h := range http {
		if n, _ := h["name"].(string); n != "" {
			names = append(names, n)
		}
	}
	return listOrNone(names)
}

// runVersions writes (or removes) the VirtualService and the local subsets
// its rules need.
func (o *RouteOptions) runVersions(ctx context.Context) ([]cli.Row, error) {
	c, err := o.factory.Cluster(o.context)
	if err != nil {
		return nil, fmt.Errorf("--context: %w", err)
	}
	v, err := o.readVersions(ctx, c)
	if err != nil {
		return nil, err
	}
	name := routing.Name(o.Service, o.namespace)
	if v.vs != nil && !builders.IsManaged(v.vs) {
		return nil, fmt.Errorf("%s: VirtualService %s/%s exists and is not managed by kubectl-mesh; it is left alone: delete it or edit it by hand", c.Context, o.namespace, name)
	}
	w := cli.Writer{Dynamic: c.Dynamic, DryRun: parsedDryRun(o.DryRun)}
	row := cli.Row{Cluster: c.Context, Kind: rules.KindVirtualService, Namespace: o.namespace, Name: name}
	if o.Remove && o.match == nil {
		switch {
		case v.vs == nil:
			row.Action = cli.NotFound
		case o.DryRun == DryRunClient:
			row.Action = cli.Deleted
		default:
			row.Action, row.Err = cli.Deleted, w.Delete(ctx, rules.VirtualServiceGVR, v.vs)
		}
		return []cli.Row{row}, nil
	}
	http, err := o.rules(c, v)
	if err != nil {
		return nil, err
	}
	want := routing.VirtualService(v.svc, http)
	if o.DryRun == DryRunClient {
		row.Action, row.Object = cli.Planned, want
	} else {
		row.Object, row.Action, row.Err = w.Put(ctx, rules.VirtualServiceGVR, v.vs, want)
	}
	rows := []cli.Row{row}
	if local := routing.Subsets(http, v.svc.LocalHost()); len(local) > 0 && row.Err == nil {
		if r := o.localSubsets(ctx, c, w, v, local); r != nil {
			rows = append(rows, *r)
		}
	}
	return rows, nil
}

// localSubsets writes or merges the local DestinationRule subsets the
// routes need; a rule the user owns is left alone with a note.
func (o *RouteOptions) localSubsets(ctx context.Context, c *cli.Cluster, w cli.Writer, v *versionView, subsets []string) *cli.Row {
	ns := o.namespace
	local := builders.Local{Name: o.Service, Namespace: ns, VersionLabel: o.VersionLabel, Versions: subsets}
	if owned := userRule(v.rules, o.Service, ns, ""); owned != nil {
		if missing := missingSubsets(owned, subsets); len(missing) > 0 {
			o.warn("%s", userRuleNote(c.Context, owned, local))
		}
		return nil
	}
	name := builders.LocalDestinationRuleName(o.Service, ns)
	existing := v.rules[ns+"/"+name]
	local.Versions = append(local.Versions, builders.SubsetNames(existing)...)
	local.ExportedTo = builders.SplitList(annotation(existing, builders.AnnotationExportedTo))
	local.Locality = builders.LocalityPolicyOf(existing)
	row := cli.Row{Cluster: c.Context, Kind: rules.KindDestinationRule, Namespace: ns, Name: name}
	want := builders.LocalDestinationRule(local)
	if o.DryRun == DryRunClient {
		row.Action, row.Object = cli.Planned, want
		return &row
	}
	row.Object, row.Action, row.Err = w.Put(ctx, rules.DestinationRuleGVR, existing, want)
	return &row
}

func missingSubsets(dr *unstructured.Unstructured, want []string) []string {
	have := builders.SubsetNames(dr)
	return slices.DeleteFunc(slices.Clone(want), func(s string) bool { return slices.Contains(have, s) })
}
