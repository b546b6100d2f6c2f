package plugin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// writeLocalRules writes the source cluster's version DestinationRule of
// every Service that now has an entry in some target, so that a subset name
// arriving in the SNI reaches the Pods of that version. The Services are
// written in parallel, like the targets.
func (o *ExportOptions) writeLocalRules(ctx context.Context, src *source, exported map[string][]string) []cli.Row {
	w := cli.Writer{Dynamic: src.Dynamic, DryRun: parsedDryRun(o.DryRun)}
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		rows  []cli.Row
		notes []string
		jobs  = make(chan exportService)
	)
	for range serviceWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for svc := range jobs {
				row, note := o.localRule(ctx, w, src, svc, exported[svc.Name])
				mu.Lock()
				if row != nil {
					rows = append(rows, *row)
				}
				if note != "" {
					notes = append(notes, note)
				}
				mu.Unlock()
			}
		}()
	}
	for _, svc := range src.Services {
		if svc.Err == nil && len(exported[svc.Name]) > 0 && len(svc.Versions) > 0 {
			jobs <- svc
		}
	}
	close(jobs)
	wg.Wait()
	slices.Sort(notes)
	for _, n := range notes {
		o.warn("%s", n)
	}
	cli.SortRows(rows)
	return rows
}

// localRule writes one Service's version rule in the source; a rule the
// user owns for that host is left alone and described in the note.
func (o *ExportOptions) localRule(ctx context.Context, w cli.Writer, src *source, svc exportService, targets []string) (*cli.Row, string) {
	name := builders.LocalDestinationRuleName(svc.Name, o.namespace)
	row := cli.Row{Cluster: src.Context, Kind: rules.KindDestinationRule, Namespace: o.namespace, Name: name, Gateway: src.Gateway.String()}
	local := builders.Local{Name: svc.Name, Namespace: o.namespace, ClusterDomain: o.ClusterDomain, VersionLabel: o.VersionLabel, Versions: svc.Versions}
	if owned := userRule(src.Rules, svc.Name, o.namespace, o.ClusterDomain); owned != nil {
		return nil, userRuleNote(src.Context, owned, local)
	}
	existing := src.Rules[o.namespace+"/"+name]
	local.Locality = builders.LocalityPolicyOf(existing)
	if o.DryRun == DryRunClient {
		local.ExportedTo = append(builders.SplitList(annotation(existing, builders.AnnotationExportedTo)), targets...)
		row.Action, row.Object = cli.Planned, builders.LocalDestinationRule(local)
		return &row, ""
	}
	for attempt := 1; ; attempt++ {
		local.ExportedTo = append(builders.SplitList(annotation(existing, builders.AnnotationExportedTo)), targets...)
		got, action, err := w.Put(ctx, rules.DestinationRuleGVR, existing, builders.LocalDestinationRule(local))
		if err != nil && cli.LostRace(err) && attempt < cli.MaxAttempts {
			if existing, err = w.Get(ctx, rules.DestinationRuleGVR, o.namespace, name); err == nil {
				continue
			}
		}
		if err != nil {
			row.Action, row.Err = cli.Failed, err
		} else {
			row.Action, row.Object = action, got
		}
		return &row, ""
	}
}

// userRule finds a DestinationRule kubectl-mesh did not write that applies
// to the Service; Istio merges no two rules for one host, so export leaves
// it alone instead of adding a second.
func userRule(all map[string]*unstructured.Unstructured, name, namespace, domain string) *unstructured.Unstructured {
	for _, key := range sortedKeys(all) {
		dr := all[key]
		if !builders.IsManaged(dr) && builders.SelectsLocalHost(dr, name, namespace, domain) {
			return dr
		}
	}
	return nil
}

func userRuleNote(cluster string, dr *unstructured.Unstructured, l builders.Local) string {
	have := builders.SubsetNames(dr)
	var missing []string
	for _, v := range l.Versions {
		if !slices.Contains(have, v) {
			missing = append(missing, v)
		}
	}
	label := l.VersionLabel
	if label == "" {
		label = builders.DefaultVersionLabel
	}
	note := fmt.Sprintf("%s: DestinationRule %s/%s for %s is not managed by kubectl-mesh and was left alone; it must define subsets %s (each selecting the Pods' %s label)",
		cluster, dr.GetNamespace(), dr.GetName(), builders.HostOf(dr), strings.Join(l.Versions, ", "), label)
	if len(missing) > 0 {
		note += "; missing now: " + strings.Join(missing, ", ")
	}
	return note
}

func annotation(u *unstructured.Unstructured, key string) string {
	if u == nil {
		return ""
	}
	return u.GetAnnotations()[key]
}
