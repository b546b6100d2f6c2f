package plugin

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/routing"
)

// runLocality writes the locality policy into every cluster of --contexts
// (default --context); each cluster fails on its own.
func (o *RouteOptions) runLocality(ctx context.Context) []cli.Row {
	contexts := o.Contexts
	if len(contexts) == 0 {
		contexts = []string{o.context}
	}
	var rows []cli.Row
	for _, name := range contexts {
		row := o.localityIn(ctx, name)
		rows = append(rows, row)
	}
	return rows
}

func (o *RouteOptions) localityIn(ctx context.Context, context string) cli.Row {
	row := cli.Row{Cluster: context, Kind: rules.KindDestinationRule, Namespace: o.namespace}
	fail := func(err error) cli.Row {
		row.Action, row.Err = cli.Failed, err
		return row
	}
	c, err := o.factory.Cluster(context)
	if err != nil {
		return fail(fmt.Errorf("--contexts: %w", err))
	}
	svc := routing.Service{Name: o.Service, Namespace: o.namespace}
	var existing, want *unstructured.Unstructured
	if o.Host == "global" {
		existing, want, err = o.globalPolicy(ctx, c, svc, &row)
	} else {
		existing, want, err = o.localPolicy(ctx, c, svc, &row)
	}
	if err != nil || want == nil {
		if err != nil {
			return fail(err)
		}
		return row
	}
	if o.DryRun == DryRunClient {
		row.Action, row.Object = cli.Planned, want
		return row
	}
	w := cli.Writer{Dynamic: c.Dynamic, DryRun: parsedDryRun(o.DryRun)}
	row.Object, row.Action, row.Err = w.Put(ctx, rules.DestinationRuleGVR, existing, want)
	return row
}

// globalPolicy rebuilds the .global rule of the export into c with the
// policy, from the entry (ports, sources, domain), so that every level of
// the rule carries it.
func (o *RouteOptions) globalPolicy(ctx context.Context, c *cli.Cluster, svc routing.Service, row *cli.Row) (existing, want *unstructured.Unstructured, err error) {
	list, err := c.Dynamic.Resource(rules.ServiceEntryGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list ServiceEntries: %w; are Istio's CRDs installed?", err)
	}
	var se *unstructured.Unstructured
	for i := range list.Items {
		hosts, _, _ := unstructured.NestedStringSlice(list.Items[i].Object, "spec", "hosts")
		if builders.IsManaged(&list.Items[i]) && slices.Contains(hosts, svc.GlobalHost()) {
			se = &list.Items[i]
			break
		}
	}
	if se == nil {
		return nil, nil, fmt.Errorf("no export of %s/%s into %s (no ServiceEntry for %s written by kubectl mesh export); export it first, or use --host local", svc.Namespace, svc.Name, c.Context, svc.GlobalHost())
	}
	ns := se.GetNamespace()
	row.Namespace, row.Name = ns, builders.GlobalDestinationRuleName(svc.Name, svc.Namespace)
	exp := builders.Export{
		Name: svc.Name, Namespace: svc.Namespace, TargetNamespace: ns,
		Ports: builders.PortsOf(se), Sources: builders.SourcesOf(se), ClusterDomain: builders.ClusterDomainOf(se),
		EgressAddress: builders.EgressAddressOf(se), Locality: o.policy,
	}
	if a := builders.Addresses(se); len(a) > 0 {
		exp.VIP = a[0]
	}
	o.checkRegions(c.Context, se, exp.Sources)
	existing, err = cli.Writer{Dynamic: c.Dynamic}.Get(ctx, rules.DestinationRuleGVR, ns, row.Name)
	if err != nil {
		return nil, nil, err
	}
	if existing != nil && !builders.IsManaged(existing) {
		row.Action = cli.Skipped + " (not managed by kubectl-mesh)"
		o.warn("%s: DestinationRule %s/%s is not managed by kubectl-mesh and was left alone; set the locality policy on spec.trafficPolicy and on every portLevelSettings entry of it and of its subsets (they do not inherit): %s", c.Context, ns, row.Name, policyYAML(o.policy))
		return nil, nil, nil
	}
	want, _, err = builders.GlobalDestinationRule(exp)
	return existing, want, err
}

// localPolicy writes the policy on the local rule of the Service in c.
func (o *RouteOptions) localPolicy(ctx context.Context, c *cli.Cluster, svc routing.Service, row *cli.Row) (existing, want *unstructured.Unstructured, err error) {
	ns := svc.Namespace
	all, err := listByName(ctx, c.Dynamic, rules.DestinationRuleGVR, ns)
	if err != nil {
		return nil, nil, fmt.Errorf("list DestinationRules in namespace %s: %w", ns, err)
	}
	row.Name = builders.LocalDestinationRuleName(svc.Name, ns)
	if owned := userRule(all, svc.Name, ns, ""); owned != nil {
		row.Name, row.Action = owned.GetName(), cli.Skipped+" (not managed by kubectl-mesh)"
		o.warn("%s: DestinationRule %s/%s for %s is not managed by kubectl-mesh and was left alone; set on its spec.trafficPolicy: %s", c.Context, ns, owned.GetName(), svc.LocalHost(), policyYAML(o.policy))
		return nil, nil, nil
	}
	existing = all[ns+"/"+row.Name]
	versions := builders.SubsetNames(existing)
	if existing == nil {
		if _, err := c.Kube.CoreV1().Services(ns).Get(ctx, svc.Name, metav1.GetOptions{}); err != nil {
			return nil, nil, fmt.Errorf("service %s/%s: %w; --host local balances a Service of this cluster", ns, svc.Name, err)
		}
	}
	want = builders.LocalDestinationRule(builders.Local{
		Name: svc.Name, Namespace: ns, VersionLabel: o.VersionLabel, Versions: versions,
		ExportedTo: builders.SplitList(annotation(existing, builders.AnnotationExportedTo)), Locality: o.policy,
	})
	return existing, want, nil
}

// checkRegions warns about failover regions no endpoint of the entry is
// in, and about endpoints without a locality: the policy then cannot tell
// those sources apart.
func (o *RouteOptions) checkRegions(cluster string, se *unstructured.Unstructured, sources []builders.Source) {
	var regions []string
	for _, s := range sources {
		if s.Locality == "" {
			o.warn("%s: the endpoint of source %s in ServiceEntry %s/%s has no locality, so locality load balancing cannot place it; export it again (export sets the locality) or with --locality", cluster, s.Cluster, se.GetNamespace(), se.GetName())
			continue
		}
		region, _, _ := strings.Cut(s.Locality, "/")
		regions = append(regions, region)
	}
	for _, f := range o.policy.Failover {
		for _, r := range []string{f.From, f.To} {
			if !slices.Contains(regions, r) {
				o.warn("%s: --failover %s=%s: no endpoint of %s is in region %s (the endpoints' regions: %s)", cluster, f.From, f.To, se.GetName(), r, listOrNone(slices.Compact(slices.Sorted(slices.Values(regions)))))
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
