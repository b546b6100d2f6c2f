package routing

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// UserRule finds, among DestinationRules keyed by namespace/name, one that
// kubectl-mesh did not write and that applies to the Service's local host
// (in cluster domain domain, "" for cluster.local). Istio merges no two
// rules for one host, so export and route leave such a rule alone instead
// of adding a second.
func UserRule(all map[string]*unstructured.Unstructured, name, namespace, domain string) *unstructured.Unstructured {
	for _, key := range slices.Sorted(maps.Keys(all)) {
		if dr := all[key]; !rules.IsManaged(dr.GetLabels()) && builders.SelectsLocalHost(dr, name, namespace, domain) {
			return dr
		}
	}
	return nil
}

// MissingSubsets are the subsets of want that dr does not define.
func MissingSubsets(dr *unstructured.Unstructured, want []string) []string {
	have := builders.SubsetNames(dr)
	return slices.DeleteFunc(slices.Clone(want), func(s string) bool { return slices.Contains(have, s) })
}

// UserRuleNote says which subsets a rule the user owns (see UserRule) must
// define for l's versions, and which it lacks now.
func UserRuleNote(cluster string, dr *unstructured.Unstructured, l builders.Local) string {
	label := l.VersionLabel
	if label == "" {
		label = builders.DefaultVersionLabel
	}
	note := fmt.Sprintf("%s: DestinationRule %s/%s for %s is not managed by kubectl-mesh and was left alone; it must define subsets %s (each selecting the Pods' %s label)",
		cluster, dr.GetNamespace(), dr.GetName(), builders.HostOf(dr), strings.Join(l.Versions, ", "), label)
	if missing := MissingSubsets(dr, l.Versions); len(missing) > 0 {
		note += "; missing now: " + strings.Join(missing, ", ")
	}
	return note
}
