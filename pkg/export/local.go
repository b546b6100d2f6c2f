package export

import (
	"context"
	"slices"
	"sync"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/routing"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// writeLocalRules writes the source cluster's version DestinationRule of
// every Service that now has an entry in some target, so that a subset name
// arriving in the SNI reaches the Pods of that version. The Services are
// written in parallel, like the targets.
func writeLocalRules(ctx context.Context, req Request, src *source, exported map[string][]string) []cli.Row {
	w := cli.Writer{Dynamic: src.Dynamic, DryRun: req.DryRun}
	var svcs []service
	for _, svc := range src.exportable() {
		if len(exported[svc.Name]) > 0 && len(svc.Versions) > 0 {
			svcs = append(svcs, svc)
		}
	}
	var (
		mu    sync.Mutex
		rows  []cli.Row
		notes []string
	)
	cli.ForEach(serviceWorkers, len(svcs), func(i int) {
		row, note := localRule(ctx, w, req, src, svcs[i], exported[svcs[i].Name])
		mu.Lock()
		defer mu.Unlock()
		if row != nil {
			rows = append(rows, *row)
		}
		if note != "" {
			notes = append(notes, note)
		}
	})
	slices.Sort(notes)
	for _, n := range notes {
		warn(req.Warnings, "%s", n)
	}
	cli.SortRows(rows)
	return rows
}

// localRule writes one Service's version rule in the source; a rule the
// user owns for that host is left alone and described in the note.
func localRule(ctx context.Context, w cli.Writer, req Request, src *source, svc service, targets []string) (*cli.Row, string) {
	ns := req.Namespace
	name := builders.LocalDestinationRuleName(svc.Name, ns)
	row := cli.Row{Cluster: src.Context, Kind: rules.KindDestinationRule, Namespace: ns, Name: name, Gateway: src.Gateway.String()}
	local := builders.Local{Name: svc.Name, Namespace: ns, ClusterDomain: req.ClusterDomain, VersionLabel: req.VersionLabel, Versions: svc.Versions}
	if owned := routing.UserRule(src.Rules, svc.Name, ns, req.ClusterDomain); owned != nil {
		return nil, routing.UserRuleNote(src.Context, owned, local)
	}
	existing := src.Rules[ns+"/"+name]
	local.Locality = builders.LocalityPolicyOf(existing)
	if req.DryRun == cli.DryRunClient {
		local.ExportedTo = append(builders.SplitList(builders.AnnotationOf(existing, builders.AnnotationExportedTo)), targets...)
		row.Action, row.Object = cli.Planned, builders.LocalDestinationRule(local)
		return &row, ""
	}
	err := cli.RetryOnConflict(ctx, func(n int, _ bool) error {
		if n > 1 {
			var err error
			if existing, err = w.Get(ctx, rules.DestinationRuleGVR, ns, name); err != nil {
				return err
			}
		}
		local.ExportedTo = append(builders.SplitList(builders.AnnotationOf(existing, builders.AnnotationExportedTo)), targets...)
		got, action, err := w.Put(ctx, rules.DestinationRuleGVR, existing, builders.LocalDestinationRule(local))
		if err != nil {
			return err
		}
		row.Action, row.Object = action, got
		return nil
	})
	if err != nil {
		row.Action, row.Err = cli.Failed, err
	}
	return &row, ""
}
