package export

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

// Unexport removes the source's endpoint of req's Services from every
// target at once, then cleans the source's version rules. An interrupted
// unexport stops where it was: what it removed stays removed, and running
// it again finishes.
func Unexport(ctx context.Context, f cli.Factory, req UnexportRequest) *Result {
	f = f.WithRateLimit(qps, burst)
	type targetResult struct {
		rows []cli.Row
		gone []string
	}
	results := make([]targetResult, len(req.To))
	cli.ForEach(len(req.To), len(req.To), func(i int) {
		results[i].rows, results[i].gone = unexportFrom(ctx, f, req, req.To[i])
	})
	var rows []cli.Row
	removed := map[string][]string{} // service → targets it is gone from
	for i, r := range results {
		rows = append(rows, r.rows...)
		for _, svc := range r.gone {
			removed[svc] = append(removed[svc], req.To[i]+"/"+req.TargetNamespace)
		}
	}
	cli.SortRows(rows)
	rows = append(rows, cleanSource(ctx, f, req, removed)...)
	return &Result{Rows: rows, Err: cli.WithInterrupt(ctx, "unexport", cli.Failures(rows, "unexport"))}
}

// unexportFrom handles one target; gone lists the Services that no longer
// have an endpoint of the source there.
func unexportFrom(ctx context.Context, f cli.Factory, req UnexportRequest, cluster string) (rows []cli.Row, gone []string) {
	fail := func(err error) ([]cli.Row, []string) {
		return []cli.Row{{Cluster: cluster, Action: cli.Failed, Err: err}}, nil
	}
	c, err := f.Cluster(cluster)
	if err != nil {
		return fail(fmt.Errorf("--to: %w", err))
	}
	ns := req.TargetNamespace
	p := pairs{req: req, cluster: cluster, w: cli.Writer{Dynamic: c.Dynamic, DryRun: req.DryRun}}
	if p.entries, err = listByName(ctx, c.Dynamic, rules.ServiceEntryGVR, ns); err != nil {
		return fail(fmt.Errorf("list ServiceEntries in namespace %s: %w", ns, err))
	}
	if p.rules, err = listByName(ctx, c.Dynamic, rules.DestinationRuleGVR, ns); err != nil {
		return fail(fmt.Errorf("list DestinationRules in namespace %s: %w", ns, err))
	}
	if _, err := c.Dynamic.Resource(vip.GVR).List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
		p.claims = vip.NewClaims(c.Dynamic, rules.DefaultVIPSpace())
	} else if !apierrors.IsNotFound(err) {
		return fail(fmt.Errorf("list VIPClaims: %w", err))
	}
	services := req.Services
	if req.All {
		services = exportedFrom(p.entries, req.Namespace)
	}
	for _, svc := range services {
		r, ok := p.unexport(ctx, svc)
		rows = append(rows, r...)
		if ok {
			gone = append(gone, svc)
		}
	}
	return rows, gone
}

// pairs are the entries and rules of one target that unexport shrinks or
// deletes.
type pairs struct {
	req     UnexportRequest
	cluster string
	w       cli.Writer
	claims  *vip.Claims // nil: VIPClaims are not served
	entries map[string]*unstructured.Unstructured
	rules   map[string]*unstructured.Unstructured
}

// exportedFrom lists the Services whose managed entries say they come from
// namespace ns.
func exportedFrom(entries map[string]*unstructured.Unstructured, ns string) []string {
	var out []string
	for _, key := range sortedKeys(entries) {
		se := entries[key]
		if !rules.IsManaged(se.GetLabels()) {
			continue
		}
		if from := builders.AnnotationOf(se, builders.AnnotationExportedFrom); strings.HasPrefix(from, ns+"/") {
			out = append(out, strings.TrimPrefix(from, ns+"/"))
		}
	}
	return out
}

// unexport removes the source from one Service's pair; ok says the source
// has no endpoint left there.
func (p *pairs) unexport(ctx context.Context, svc string) (rows []cli.Row, ok bool) {
	ns := p.req.TargetNamespace
	seName := builders.ServiceEntryName(svc, p.req.Namespace)
	drName := builders.GlobalDestinationRuleName(svc, p.req.Namespace)
	se, dr := p.entries[ns+"/"+seName], p.rules[ns+"/"+drName]
	seRow := cli.Row{Cluster: p.cluster, Kind: rules.KindServiceEntry, Namespace: ns, Name: seName}
	drRow := cli.Row{Cluster: p.cluster, Kind: rules.KindDestinationRule, Namespace: ns, Name: drName}
	if se == nil {
		seRow.Action, drRow.Action = cli.NotFound, cli.NotFound
		if dr != nil {
			drRow.Action = cli.Skipped
		}
		return []cli.Row{seRow, drRow}, true
	}
	seRow.VIP = strings.Join(builders.Addresses(se), ",")
	if !rules.IsManaged(se.GetLabels()) {
		seRow.Action, drRow.Action = cli.Skipped+" (not managed by kubectl-mesh)", cli.Skipped
		return []cli.Row{seRow, drRow}, false
	}
	err := cli.RetryOnConflict(ctx, func(n int, _ bool) error {
		if n > 1 {
			var err error
			if se, err = p.w.Get(ctx, rules.ServiceEntryGVR, ns, seName); err != nil {
				return err
			}
			if se == nil { // the entry is gone meanwhile
				seRow.Action, drRow.Action = cli.NotFound, cli.NotFound
				return nil
			}
			if dr, err = p.w.Get(ctx, rules.DestinationRuleGVR, ns, drName); err != nil {
				return err
			}
		}
		sources := builders.SourcesOf(se)
		rest := builders.RemoveSource(sources, p.req.ClusterName)
		switch {
		case len(rest) == len(sources):
			seRow.Action, drRow.Action = cli.Unchanged+cli.Action(" (no endpoint of "+p.req.ClusterName+")"), cli.Unchanged
			return nil
		case len(rest) == 0:
			return p.deletePair(ctx, se, dr, &seRow, &drRow)
		default:
			return p.shrinkPair(ctx, svc, se, dr, rest, &seRow, &drRow)
		}
	})
	if err != nil {
		seRow.Action, seRow.Err = cli.Failed, err
		return []cli.Row{seRow, drRow}, false
	}
	return []cli.Row{seRow, drRow}, true
}

// deletePair deletes the entry first, so that no entry is left without its
// rule, then the rule, then frees the entry's VIP claims.
func (p *pairs) deletePair(ctx context.Context, se, dr *unstructured.Unstructured, seRow, drRow *cli.Row) error {
	w := p.w
	if err := w.Delete(ctx, rules.ServiceEntryGVR, se); err != nil {
		return err
	}
	seRow.Action = cli.Deleted
	switch {
	case dr == nil:
		drRow.Action = cli.NotFound
	case !rules.IsManaged(dr.GetLabels()):
		drRow.Action = cli.Skipped + " (not managed by kubectl-mesh)"
	default:
		if err := w.Delete(ctx, rules.DestinationRuleGVR, dr); err != nil && !apierrors.IsConflict(err) {
			drRow.Action, drRow.Err = cli.Failed, err
		} else {
			drRow.Action = cli.Deleted
		}
	}
	if p.claims != nil && w.DryRun.Persists() {
		owner := vip.Owner{Namespace: se.GetNamespace(), Name: se.GetName(), UID: string(se.GetUID())}
		for _, a := range builders.Addresses(se) {
			if addr, err := netip.ParseAddr(a); err == nil {
				if err := p.claims.Release(ctx, addr, owner); err != nil {
					seRow.Err = fmt.Errorf("entry deleted, but its VIP claim %s remains: %w; delete it with kubectl delete vipclaim %s", a, err, a)
				}
			}
		}
	}
	return nil
}

// shrinkPair rewrites entry and rule without the source's endpoint and
// subsets, keeping the VIP, the ports and the egress variant.
func (p *pairs) shrinkPair(ctx context.Context, svc string, se, dr *unstructured.Unstructured, rest []builders.Source, seRow, drRow *cli.Row) error {
	exp := builders.Export{
		Name: svc, Namespace: p.req.Namespace, TargetNamespace: p.req.TargetNamespace,
		Ports:         builders.PortsOf(se),
		Sources:       rest,
		ClusterDomain: builders.ClusterDomainOf(se),
		EgressAddress: builders.EgressAddressOf(se),
	}
	if a := builders.Addresses(se); len(a) > 0 {
		exp.VIP = a[0]
	}
	wantSE, err := builders.ServiceEntry(exp)
	if err != nil {
		return err
	}
	wantDR, _, err := builders.GlobalDestinationRule(exp)
	if err != nil {
		return err
	}
	// The entry shrinks first: a rule with a subset for a cluster the entry
	// no longer has routes nowhere, the reverse would drop live traffic.
	_, action, err := p.w.Put(ctx, rules.ServiceEntryGVR, se, wantSE)
	if err != nil {
		return err
	}
	seRow.Action = action
	if dr != nil && !rules.IsManaged(dr.GetLabels()) {
		drRow.Action = cli.Skipped + " (not managed by kubectl-mesh)"
		return nil
	}
	_, action, err = p.w.Put(ctx, rules.DestinationRuleGVR, dr, wantDR)
	if err != nil {
		drRow.Action, drRow.Err = cli.Failed, err
		return nil
	}
	drRow.Action = action
	return nil
}

// cleanSource removes the targets from the source's version rule and
// deletes it with the last one.
func cleanSource(ctx context.Context, f cli.Factory, req UnexportRequest, removed map[string][]string) []cli.Row {
	if len(removed) == 0 {
		return nil
	}
	c, err := f.Cluster(req.From)
	if err != nil {
		return []cli.Row{{Cluster: req.From, Action: cli.Failed, Err: fmt.Errorf("--from: %w", err)}}
	}
	w := cli.Writer{Dynamic: c.Dynamic, DryRun: req.DryRun}
	var rows []cli.Row
	for _, svc := range sortedKeys(removed) {
		name := builders.LocalDestinationRuleName(svc, req.Namespace)
		row := cli.Row{Cluster: req.From, Kind: rules.KindDestinationRule, Namespace: req.Namespace, Name: name}
		err := cli.RetryOnConflict(ctx, func(int, bool) error {
			dr, err := w.Get(ctx, rules.DestinationRuleGVR, req.Namespace, name)
			switch {
			case err != nil:
				return err
			case dr == nil:
				row.Action = cli.NotFound
				return nil
			case !rules.IsManaged(dr.GetLabels()):
				row.Action = cli.Skipped + " (not managed by kubectl-mesh)"
				return nil
			}
			left := slices.DeleteFunc(builders.SplitList(builders.AnnotationOf(dr, builders.AnnotationExportedTo)), func(t string) bool { return slices.Contains(removed[svc], t) })
			if len(left) == 0 {
				row.Action = cli.Deleted
				return w.Delete(ctx, rules.DestinationRuleGVR, dr)
			}
			want := dr.DeepCopy()
			ann := want.GetAnnotations()
			ann[builders.AnnotationExportedTo] = strings.Join(left, ",")
			want.SetAnnotations(ann)
			_, row.Action, err = w.Put(ctx, rules.DestinationRuleGVR, dr, applyable(want))
			return err
		})
		if err != nil {
			row.Action, row.Err = cli.Failed, err
		}
		rows = append(rows, row)
	}
	return rows
}
