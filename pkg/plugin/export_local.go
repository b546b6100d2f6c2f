package plugin

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
)

// writeLocalRules writes the source cluster's version DestinationRule of
// every Service that now has an entry in some target, so that a subset name
// arriving in the SNI reaches the Pods of that version.
func (o *ExportOptions) writeLocalRules(ctx context.Context, src *source, exported map[string][]string) []meshRow {
	w := writer{dyn: src.Dynamic, dryRun: o.DryRun == DryRunServer}
	var rows []meshRow
	for _, svc := range src.Services {
		targets := exported[svc.Name]
		if svc.Err != nil || len(targets) == 0 || len(svc.Versions) == 0 {
			continue
		}
		name := builders.LocalDestinationRuleName(svc.Name, o.namespace)
		row := meshRow{Cluster: src.Context, Kind: builders.KindDestinationRule, Namespace: o.namespace, Name: name, Gateway: src.Gateway.String()}
		local := builders.Local{Name: svc.Name, Namespace: o.namespace, VersionLabel: o.VersionLabel, Versions: svc.Versions}
		if owned := userRule(src.Rules, svc.Name, o.namespace); owned != nil {
			o.warn("%s", userRuleNote(src.Context, owned, local))
			continue
		}
		existing := src.Rules[o.namespace+"/"+name]
		if o.DryRun == DryRunClient {
			local.ExportedTo = append(builders.SplitList(annotation(existing, builders.AnnotationExportedTo)), targets...)
			row.Action, row.Object = actionPlanned, builders.LocalDestinationRule(local)
			rows = append(rows, row)
			continue
		}
		for attempt := 1; ; attempt++ {
			local.ExportedTo = append(builders.SplitList(annotation(existing, builders.AnnotationExportedTo)), targets...)
			got, action, err := w.put(ctx, builders.DestinationRuleGVR, existing, builders.LocalDestinationRule(local))
			if err != nil && retryable(err) && attempt < maxAttempts {
				if existing, err = w.get(ctx, builders.DestinationRuleGVR, o.namespace, name); err == nil {
					continue
				}
			}
			if err != nil {
				row.Action, row.Err = actionFailed, err
			} else {
				row.Action, row.Object = action, got
			}
			break
		}
		rows = append(rows, row)
	}
	return rows
}

// userRule finds a DestinationRule kubectl-mesh did not write that applies
// to the Service; Istio merges no two rules for one host, so export leaves
// it alone instead of adding a second.
func userRule(all map[string]*unstructured.Unstructured, name, namespace string) *unstructured.Unstructured {
	for _, key := range sortedKeys(all) {
		dr := all[key]
		if !builders.IsManaged(dr) && builders.SelectsHost(dr, name, namespace) {
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
