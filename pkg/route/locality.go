package route

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/routing"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// locality writes the locality policy into every cluster of req.Contexts
// (default req.Context); each cluster fails on its own.
func (r Router) locality(ctx context.Context, req Request) []cli.Row {
	contexts := req.Contexts
	if len(contexts) == 0 {
		contexts = []string{req.Context}
	}
	rows := make([]cli.Row, 0, len(contexts))
	for _, name := range contexts {
		rows = append(rows, r.localityIn(ctx, req, name))
	}
	return rows
}

func (r Router) localityIn(ctx context.Context, req Request, context string) cli.Row {
	row := cli.Row{Cluster: context, Kind: rules.KindDestinationRule, Namespace: req.Namespace}
	c, err := r.Factory.Cluster(context)
	if err != nil {
		row.Action, row.Err = cli.Failed, fmt.Errorf("--contexts: %w", err)
		return row
	}
	plan := r.localPolicy
	if req.Host == "global" {
		plan = r.globalPolicy
	}
	ch, err := plan(ctx, c, req, row)
	if err != nil {
		ch.row.Action, ch.row.Err = cli.Failed, err
		return ch.row
	}
	return commit(ctx, cli.Writer{Dynamic: c.Dynamic, DryRun: req.DryRun}, ch)
}

// globalPolicy rebuilds the .global rule of the export into c with the
// policy, from the entry (ports, sources, domain), so that every level of
// the rule carries it.
func (r Router) globalPolicy(ctx context.Context, c *cli.Cluster, req Request, row cli.Row) (change, error) {
	ch := change{row: row, gvr: rules.DestinationRuleGVR}
	svc := routing.Service{Name: req.Service, Namespace: req.Namespace}
	list, err := c.Dynamic.Resource(rules.ServiceEntryGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return ch, fmt.Errorf("list ServiceEntries: %w; are Istio's CRDs installed?", err)
	}
	var se *unstructured.Unstructured
	for i := range list.Items {
		if view := rules.ReadServiceEntry(list.Items[i].Object); view.Managed() && slices.Contains(view.Hosts, svc.GlobalHost()) {
			se = &list.Items[i]
			break
		}
	}
	if se == nil {
		return ch, fmt.Errorf("no export of %s/%s into %s (no ServiceEntry for %s written by kubectl mesh export); export it first, or use --host local", svc.Namespace, svc.Name, c.Context, svc.GlobalHost())
	}
	ns := se.GetNamespace()
	ch.row.Namespace, ch.row.Name = ns, builders.GlobalDestinationRuleName(svc.Name, svc.Namespace)
	exp := builders.Export{
		Name: svc.Name, Namespace: svc.Namespace, TargetNamespace: ns,
		Ports: builders.PortsOf(se), Sources: builders.SourcesOf(se), ClusterDomain: builders.ClusterDomainOf(se),
		EgressAddress: builders.EgressAddressOf(se), Locality: req.Policy,
	}
	if a := builders.Addresses(se); len(a) > 0 {
		exp.VIP = a[0]
	}
	r.checkRegions(c.Context, se, exp.Sources, req.Policy)
	if ch.existing, err = (cli.Writer{Dynamic: c.Dynamic}).Get(ctx, rules.DestinationRuleGVR, ns, ch.row.Name); err != nil {
		return ch, err
	}
	if ch.existing != nil && !rules.IsManaged(ch.existing.GetLabels()) {
		ch.row.Action, ch.done = cli.Skipped+" (not managed by kubectl-mesh)", true
		r.warn("%s: DestinationRule %s/%s is not managed by kubectl-mesh and was left alone; set the locality policy on spec.trafficPolicy and on every portLevelSettings entry of it and of its subsets (they do not inherit): %s", c.Context, ns, ch.row.Name, policyYAML(req.Policy))
		return ch, nil
	}
	ch.want, _, err = builders.GlobalDestinationRule(exp)
	return ch, err
}

// localPolicy writes the policy on the local rule of the Service in c.
func (r Router) localPolicy(ctx context.Context, c *cli.Cluster, req Request, row cli.Row) (change, error) {
	ch := change{row: row, gvr: rules.DestinationRuleGVR}
	ns, name := req.Namespace, req.Service
	list, err := c.Dynamic.Resource(rules.DestinationRuleGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return ch, fmt.Errorf("list DestinationRules in namespace %s: %w", ns, err)
	}
	all := byName(list.Items)
	ch.row.Name = builders.LocalDestinationRuleName(name, ns)
	if owned := routing.UserRule(all, name, ns, ""); owned != nil {
		ch.row.Name, ch.row.Action, ch.done = owned.GetName(), cli.Skipped+" (not managed by kubectl-mesh)", true
		host := routing.Service{Name: name, Namespace: ns}.LocalHost()
		r.warn("%s: DestinationRule %s/%s for %s is not managed by kubectl-mesh and was left alone; set on its spec.trafficPolicy: %s", c.Context, ns, owned.GetName(), host, policyYAML(req.Policy))
		return ch, nil
	}
	ch.existing = all[ns+"/"+ch.row.Name]
	if ch.existing == nil {
		if _, err := c.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return ch, fmt.Errorf("service %s/%s: %w; --host local balances a Service of this cluster", ns, name, err)
		}
	}
	ch.want = builders.LocalDestinationRule(builders.Local{
		Name: name, Namespace: ns, VersionLabel: req.VersionLabel, Versions: builders.SubsetNames(ch.existing),
		ExportedTo: builders.SplitList(builders.AnnotationOf(ch.existing, builders.AnnotationExportedTo)), Locality: req.Policy,
	})
	return ch, nil
}

// checkRegions warns about failover regions no endpoint of the entry is
// in, and about endpoints without a locality: the policy then cannot tell
// those sources apart.
func (r Router) checkRegions(cluster string, se *unstructured.Unstructured, sources []builders.Source, p *builders.LocalityPolicy) {
	var regions []string
	for _, s := range sources {
		if s.Locality == "" {
			r.warn("%s: the endpoint of source %s in ServiceEntry %s/%s has no locality, so locality load balancing cannot place it; export it again (export sets the locality) or with --locality", cluster, s.Cluster, se.GetNamespace(), se.GetName())
			continue
		}
		region, _, _ := strings.Cut(s.Locality, "/")
		regions = append(regions, region)
	}
	for _, f := range p.Failover {
		for _, reg := range []string{f.From, f.To} {
			if !slices.Contains(regions, reg) {
				r.warn("%s: --failover %s=%s: no endpoint of %s is in region %s (the endpoints' regions: %s)", cluster, f.From, f.To, se.GetName(), reg, listOrNone(slices.Compact(slices.Sorted(slices.Values(regions)))))
			}
		}
	}
}

// policyYAML shows the policy as the traffic policy fields to set.
func policyYAML(p *builders.LocalityPolicy) string {
	var parts []string
	for _, f := range p.Failover {
		parts = append(parts, fmt.Sprintf("{from: %s, to: %s}", f.From, f.To))
	}
	lb := "failover: [" + strings.Join(parts, ", ") + "]"
	if len(p.Distribute) > 0 {
		parts = nil
		for _, d := range p.Distribute {
			var to []string
			for _, k := range slices.Sorted(maps.Keys(d.To)) {
				to = append(to, fmt.Sprintf("%q: %d", k, d.To[k]))
			}
			parts = append(parts, fmt.Sprintf("{from: %q, to: {%s}}", d.From, strings.Join(to, ", ")))
		}
		lb = "distribute: [" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprintf("loadBalancer: {localityLbSetting: {%s}}, outlierDetection: {consecutive5xxErrors: %d, interval: %s, baseEjectionTime: %s}",
		lb, p.Outlier.Consecutive5xxErrors, p.Outlier.Interval, p.Outlier.BaseEjectionTime)
}
