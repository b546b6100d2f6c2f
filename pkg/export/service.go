package export

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

// exportService exports one Service into the target: check (who owns
// what, the VIP), then plan and commit under retry, else undo what was
// written. On success the returned writes let the caller undo the Service
// later (an interrupted target); the rows are then theirs.
func (t *target) exportService(ctx context.Context, svc service) (rows []cli.Row, warnings []string, sw *serviceWrites) {
	sw = t.newWrites(svc.Name)
	ns := t.req.TargetNamespace
	se, dr := t.entries[ns+"/"+sw.se.name], t.rules[ns+"/"+sw.dr.name]
	host := rules.FormatHost(svc.Name, t.req.Namespace, "")
	if err := t.conflicts(se, dr, host, sw.se.name, sw.dr.name); err != nil {
		return sw.refused(err), nil, nil
	}
	if err := t.settleVIP(ctx, sw, se, host); err != nil {
		return sw.refused(err), nil, nil
	}
	warnings, err := t.commit(ctx, svc, sw, se, dr, userGlobalRule(t.rules, ns, host))
	if err != nil {
		t.abort(ctx, sw, err)
		return sw.rows(), warnings, nil
	}
	return sw.rows(), warnings, sw
}

func (t *target) newWrites(svc string) *serviceWrites {
	ns, gw := t.req.TargetNamespace, t.src.Gateway.String()
	seName := builders.ServiceEntryName(svc, t.req.Namespace)
	drName := builders.GlobalDestinationRuleName(svc, t.req.Namespace)
	return &serviceWrites{
		svc: svc,
		se:  written{name: seName, gvr: rules.ServiceEntryGVR, kind: rules.KindServiceEntry, row: &cli.Row{Cluster: t.cluster, Kind: rules.KindServiceEntry, Namespace: ns, Name: seName, Gateway: gw}},
		dr:  written{name: drName, gvr: rules.DestinationRuleGVR, kind: rules.KindDestinationRule, row: &cli.Row{Cluster: t.cluster, Kind: rules.KindDestinationRule, Namespace: ns, Name: drName, Gateway: gw}},
	}
}

// settleVIP finds the entry's VIP: the one it has, else a new one, claimed
// where VIPClaims are served.
func (t *target) settleVIP(ctx context.Context, sw *serviceWrites, se *unstructured.Unstructured, host string) error {
	sw.owner = vip.Owner{Namespace: t.req.TargetNamespace, Name: sw.se.name, Host: host}
	if se != nil {
		sw.owner.UID = string(se.GetUID())
	}
	addr, claimed, err := t.vips.forEntry(ctx, sw.owner, builders.Addresses(se))
	if err != nil {
		return err
	}
	sw.vip, sw.claimed = addr, claimed
	if addr.IsValid() {
		sw.se.row.VIP = addr.String()
	}
	return nil
}

// commit writes the rule, then the entry: the entry, the commit point,
// never routes without its rule. A lost race (Conflict, AlreadyExists)
// re-reads both objects and merges again, so another source cluster's
// endpoint is never replaced.
func (t *target) commit(ctx context.Context, svc service, sw *serviceWrites, se, dr, userDR *unstructured.Unstructured) (warnings []string, err error) {
	fresh := true // se and dr are as the cluster holds them
	err = cli.RetryOnConflict(ctx, func(_ int, last bool) error {
		if !fresh {
			var err error
			if se, dr, err = t.reread(ctx, sw); err != nil {
				return err
			}
		}
		fresh = false
		sources := builders.MergeSource(builders.SourcesOf(se), t.src.builderSource(svc))
		wantSE, wantDR, more, err := t.plan(svc, sources, sw.se.row.VIP, dr, userDR, sw.dr.row)
		if err != nil {
			return err
		}
		warnings = append(warnings, more...)
		var gotDR *unstructured.Unstructured
		if wantDR != nil { // nil: the user owns the rule
			if gotDR, err = t.put(ctx, &sw.dr, dr, wantDR, last); err != nil {
				return err
			}
		}
		gotSE, err := t.put(ctx, &sw.se, se, wantSE, last)
		if err != nil {
			return err
		}
		// Another source may have been merged into the entry between our
		// read and our write of the rule: bring the rule up to date.
		if !sameClusters(builders.SourcesOf(gotSE), sources) && !last {
			se, dr, fresh = gotSE, gotDR, true
			return apierrors.NewConflict(rules.ServiceEntryGVR.GroupResource(), gotSE.GetName(), errors.New("another source cluster was merged into it meanwhile"))
		}
		return nil
	})
	return warnings, err
}

// plan builds the entry and the rule one attempt writes (the pure
// builders); wantDR is nil when the user owns the `.global` rule.
func (t *target) plan(svc service, sources []builders.Source, vipAddr string, dr, userDR *unstructured.Unstructured, drRow *cli.Row) (wantSE, wantDR *unstructured.Unstructured, warnings []string, err error) {
	exp := entryOf(t.req, svc, sources, vipAddr)
	if dr != nil && rules.IsManaged(dr.GetLabels()) {
		// The locality policy of `kubectl mesh route` stays.
		exp.Locality = builders.LocalityPolicyOf(dr)
	}
	if wantSE, err = builders.ServiceEntry(exp); err != nil {
		return nil, nil, nil, err
	}
	if wantDR, warnings, err = builders.GlobalDestinationRule(exp); err != nil {
		return nil, nil, nil, err
	}
	if userDR != nil {
		drRow.Name, drRow.Action = userDR.GetName(), cli.Skipped+" (not managed by kubectl-mesh)"
		warnings = append(warnings, userGlobalRuleNote(userDR, exp))
		wantDR = nil
	}
	return wantSE, wantDR, warnings, nil
}

// abort undoes what this Service's export wrote into the target (the rule,
// the VIP claim) and says why on its rows.
func (t *target) abort(ctx context.Context, sw *serviceWrites, cause error) {
	if ic := cli.Interrupted(ctx); ic != nil {
		cause = ic
	}
	errs := t.undo(ctx, sw)
	sw.se.row.Action, sw.se.row.Err = cli.Failed, cause
	if len(errs) > 0 {
		sw.se.row.Err = fmt.Errorf("%w (%v)", cause, errs)
	}
	if sw.dr.row.Action == "" {
		sw.dr.row.Action = cli.Skipped
	}
}

func (t *target) reread(ctx context.Context, sw *serviceWrites) (se, dr *unstructured.Unstructured, err error) {
	ns := t.req.TargetNamespace
	if se, err = t.w.Get(ctx, rules.ServiceEntryGVR, ns, sw.se.name); err != nil {
		return nil, nil, err
	}
	if dr, err = t.w.Get(ctx, rules.DestinationRuleGVR, ns, sw.dr.name); err != nil {
		return nil, nil, err
	}
	return se, dr, nil
}

// conflicts refuses a Service whose objects in the target someone else
// owns, whose entry has another cluster domain, or whose host another
// visible entry holds.
func (t *target) conflicts(se, dr *unstructured.Unstructured, host, seName, drName string) error {
	ns := t.req.TargetNamespace
	if se != nil && !rules.IsManaged(se.GetLabels()) {
		return fmt.Errorf("%s %s/%s exists and is not managed by kubectl-mesh; it is left alone: delete it or export into another --target-namespace", se.GetKind(), ns, se.GetName())
	}
	if dr != nil && !rules.IsManaged(dr.GetLabels()) && builders.HostOf(dr) != host {
		return fmt.Errorf("DestinationRule %s/%s exists for host %s and is not managed by kubectl-mesh; it is left alone: delete it or export into another --target-namespace", ns, drName, builders.HostOf(dr))
	}
	if err := t.sameDomain(se); err != nil {
		return err
	}
	if holder := t.hostHolder(host, ns, seName); holder != "" {
		// The webhook refuses the same: Istio merges entries of one host
		// unpredictably, and each has its own VIP.
		return fmt.Errorf("%s is already held by ServiceEntry %s, which is visible in the same namespaces; a sidecar would use only one of them: delete %s (or give it an exportTo that keeps it apart), then export again", host, holder, holder)
	}
	return nil
}

// sameDomain refuses to merge this source into an entry whose other
// sources live under another cluster DNS domain: the SNI of the host's one
// DestinationRule names the domain, so it cannot serve both.
func (t *target) sameDomain(se *unstructured.Unstructured) error {
	if se == nil || len(builders.RemoveSource(builders.SourcesOf(se), t.src.Name)) == 0 {
		return nil
	}
	if have := builders.ClusterDomainOf(se); have != t.req.ClusterDomain {
		return fmt.Errorf("ServiceEntry %s/%s has sources in cluster domain %s, and --source-cluster-domain of %s is %s; the sources of one host must share one domain, which the SNI of its DestinationRule names: export from %s with --source-cluster-domain %s, or unexport the others first",
			se.GetNamespace(), se.GetName(), have, t.src.Name, t.req.ClusterDomain, t.src.Name, have)
	}
	return nil
}

// hostHolder is another ServiceEntry of host that a sidecar would see
// together with the entry export writes (namespace ns, no exportTo, so
// visible everywhere), as "namespace/name"; "" when there is none.
func (t *target) hostHolder(host, ns, seName string) string {
	for _, key := range t.byHost[host] {
		if key == ns+"/"+seName {
			continue
		}
		other := rules.ReadServiceEntry(t.entries[key].Object)
		if rules.VisibleTogether(ns, nil, other.Namespace, other.ExportTo) {
			return key
		}
	}
	return ""
}

// userGlobalRule finds a DestinationRule kubectl-mesh did not write for the
// `.global` host in namespace ns: Istio applies one rule per host, so
// export leaves it alone instead of adding a second.
func userGlobalRule(all map[string]*unstructured.Unstructured, ns, host string) *unstructured.Unstructured {
	for _, key := range sortedKeys(all) {
		dr := all[key]
		if dr.GetNamespace() == ns && !rules.IsManaged(dr.GetLabels()) && builders.HostOf(dr) == host {
			return dr
		}
	}
	return nil
}

func userGlobalRuleNote(dr *unstructured.Unstructured, e builders.Export) string {
	return fmt.Sprintf("DestinationRule %s/%s for %s is not managed by kubectl-mesh and was left alone; for requests to land it must set tls.mode ISTIO_MUTUAL with the remote SNI (spec.trafficPolicy.portLevelSettings, and each subset's trafficPolicy.portLevelSettings): %s",
		dr.GetNamespace(), dr.GetName(), builders.HostOf(dr), strings.Join(builders.RequiredSNIs(e), "; "))
}

func sameClusters(a, b []builders.Source) bool {
	names := func(s []builders.Source) []string {
		out := make([]string, 0, len(s))
		for _, x := range s {
			out = append(out, x.Cluster)
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(names(a), names(b))
}
