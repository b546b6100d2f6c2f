package route

import (
	"context"
	"fmt"
	"slices"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/routing"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// versionView is what version routing reads from the cluster: the versions
// it runs, those exports into it provide, and the objects route may change.
type versionView struct {
	cluster   string
	svc       routing.Service
	hasLocal  bool     // the Service exists in the cluster
	local     []string // versions of the Pods the Service selects
	global    []string // subsets of the .global rules for the host
	globalRef []string // those rules, namespace/name
	vs        *unstructured.Unstructured
	rules     map[string]*unstructured.Unstructured // DestinationRules of the namespace
}

// versions writes (or removes) the VirtualService of req.Context and the
// local subsets its rules need: read, plan, then write in that order,
// stopping at the first failure (the subsets serve the routes).
func (r Router) versions(ctx context.Context, req Request) ([]cli.Row, error) {
	c, err := r.Factory.Cluster(req.Context)
	if err != nil {
		return nil, fmt.Errorf("--context: %w", err)
	}
	v, err := readVersions(ctx, c, req)
	if err != nil {
		return nil, err
	}
	changes, err := r.planVersions(v, req)
	if err != nil {
		return nil, err
	}
	w := cli.Writer{Dynamic: c.Dynamic, DryRun: req.DryRun}
	var rows []cli.Row
	for _, ch := range changes {
		row := commit(ctx, w, ch)
		rows = append(rows, row)
		if row.Err != nil {
			break
		}
	}
	return rows, nil
}

func readVersions(ctx context.Context, c *cli.Cluster, req Request) (*versionView, error) {
	ns := req.Namespace
	v := &versionView{cluster: c.Context, svc: routing.Service{Name: req.Service, Namespace: ns}}
	svc, err := c.Kube.CoreV1().Services(ns).Get(ctx, req.Service, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("%s: read Service %s/%s: %w", c.Context, ns, req.Service, err)
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
		v.local = builders.Versions(svc, pods.Items, eps, req.VersionLabel)
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
	name := routing.Name(req.Service, ns)
	if v.vs, err = (cli.Writer{Dynamic: c.Dynamic}).Get(ctx, rules.VirtualServiceGVR, ns, name); err != nil {
		return nil, fmt.Errorf("%s: read VirtualService %s/%s: %w", c.Context, ns, name, err)
	}
	return v, nil
}

// planVersions works out the VirtualService and the local DestinationRule
// subsets its routes need, from what was read.
func (r Router) planVersions(v *versionView, req Request) ([]change, error) {
	name := routing.Name(req.Service, req.Namespace)
	if v.vs != nil && !rules.IsManaged(v.vs.GetLabels()) {
		return nil, fmt.Errorf("%s: VirtualService %s/%s exists and is not managed by kubectl-mesh; it is left alone: delete it or edit it by hand", v.cluster, req.Namespace, name)
	}
	vs := change{
		row: cli.Row{Cluster: v.cluster, Kind: rules.KindVirtualService, Namespace: req.Namespace, Name: name},
		gvr: rules.VirtualServiceGVR, existing: v.vs,
	}
	if req.Remove && req.Match == nil {
		vs.remove = true
		if v.vs == nil {
			vs.row.Action, vs.done = cli.NotFound, true
		}
		return []change{vs}, nil
	}
	http, err := v.plan(req)
	if err != nil {
		return nil, err
	}
	vs.want = routing.VirtualService(v.svc, http)
	changes := []change{vs}
	if local := routing.Subsets(http, v.svc.LocalHost()); len(local) > 0 {
		if ch := r.localSubsets(v, req, local); ch != nil {
			changes = append(changes, *ch)
		}
	}
	return changes, nil
}

// plan works out the VirtualService's new http routes.
func (v *versionView) plan(req Request) ([]map[string]any, error) {
	http := routing.HTTPRules(v.vs)
	if req.Remove {
		out, found := routing.Remove(http, req.Match)
		if !found {
			return nil, fmt.Errorf("%s: VirtualService %s/%s has no rule --when %s (its rules: %s)", v.cluster, req.Namespace, routing.Name(req.Service, req.Namespace), req.When, ruleNames(http))
		}
		return out, nil
	}
	var def []routing.Destination
	switch {
	case req.Otherwise != "":
		d, err := v.resolve(req.Otherwise, req.VersionLabel)
		if err != nil {
			return nil, fmt.Errorf("--otherwise: %w", err)
		}
		def = []routing.Destination{d}
	case req.Match == nil:
		d, err := v.destinations(req.VersionLabel, req.Weights)
		if err != nil {
			return nil, fmt.Errorf("--to: %w", err)
		}
		def = d
	case !routing.HasDefault(http):
		if !v.hasLocal {
			return nil, fmt.Errorf("%s: Service %s/%s does not exist here, so requests no rule matches have nowhere to go; give --otherwise VERSION of a version exports provide", v.cluster, req.Namespace, req.Service)
		}
		def = []routing.Destination{{Host: v.svc.LocalHost()}}
	}
	if req.Match != nil {
		dests, err := v.destinations(req.VersionLabel, req.Weights)
		if err != nil {
			return nil, fmt.Errorf("--to: %w", err)
		}
		http = routing.Upsert(http, routing.Rule{Match: req.Match, Destinations: dests})
	}
	if def != nil {
		http = routing.Upsert(http, routing.Rule{Destinations: def})
	}
	return http, nil
}

// resolve finds where version runs: the local host when the cluster has
// Pods of it, else the .global host when an export provides it.
func (v *versionView) resolve(version, label string) (routing.Destination, error) {
	switch {
	case slices.Contains(v.local, version):
		return routing.Destination{Host: v.svc.LocalHost(), Subset: version}, nil
	case slices.Contains(v.global, version):
		return routing.Destination{Host: v.svc.GlobalHost(), Subset: version}, nil
	}
	cluster := v.cluster
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

func (v *versionView) destinations(label string, weights []routing.Weight) ([]routing.Destination, error) {
	out := make([]routing.Destination, 0, len(weights))
	for _, w := range weights {
		d, err := v.resolve(w.Version, label)
		if err != nil {
			return nil, err
		}
		d.Weight = w.Weight
		out = append(out, d)
	}
	return out, nil
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

// localSubsets plans the local DestinationRule subsets the routes need,
// merged into the rule route or export wrote; a rule the user owns is left
// alone with a note of what it must define.
func (r Router) localSubsets(v *versionView, req Request, subsets []string) *change {
	ns := req.Namespace
	local := builders.Local{Name: req.Service, Namespace: ns, VersionLabel: req.VersionLabel, Versions: subsets}
	if owned := routing.UserRule(v.rules, req.Service, ns, ""); owned != nil {
		if missing := routing.MissingSubsets(owned, subsets); len(missing) > 0 {
			r.warn("%s", routing.UserRuleNote(v.cluster, owned, local))
		}
		return nil
	}
	name := builders.LocalDestinationRuleName(req.Service, ns)
	existing := v.rules[ns+"/"+name]
	local.Versions = append(local.Versions, builders.SubsetNames(existing)...)
	local.ExportedTo = builders.SplitList(builders.AnnotationOf(existing, builders.AnnotationExportedTo))
	local.Locality = builders.LocalityPolicyOf(existing)
	return &change{
		row: cli.Row{Cluster: v.cluster, Kind: rules.KindDestinationRule, Namespace: ns, Name: name},
		gvr: rules.DestinationRuleGVR, existing: existing, want: builders.LocalDestinationRule(local),
	}
}
