package plugin

// What route (route.go, route_locality.go, route_versions.go) still uses of
// export's former files, moved here as it was until route is converted to
// the kit and the engines.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
)

// Dry-run strategies, as kubectl spells them.
const (
	DryRunNone   = "none"
	DryRunClient = "client"
	DryRunServer = "server"
)

// dryRunSuffix is what the table adds to an action under --dry-run.
func dryRunSuffix(mode string) string {
	switch mode {
	case DryRunClient:
		return " (dry run)"
	case DryRunServer:
		return " (server dry run)"
	}
	return ""
}

// parsedDryRun is the strategy of a --dry-run value already validated.
func parsedDryRun(s string) cli.DryRun {
	d, _ := cli.ParseDryRun(s)
	return d
}

func validateDryRun(s string) error {
	switch s {
	case DryRunNone, DryRunClient, DryRunServer:
		return nil
	}
	return fmt.Errorf("--dry-run %q is not supported; use none, client or server", s)
}

// listByName lists a kind in a namespace ("" = all) into a map keyed by
// namespace/name: one request for all the services of a run.
func listByName(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns string) (map[string]*unstructured.Unstructured, error) {
	l, err := dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make(map[string]*unstructured.Unstructured, len(l.Items))
	for i := range l.Items {
		out[l.Items[i].GetNamespace()+"/"+l.Items[i].GetName()] = &l.Items[i]
	}
	return out, nil
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

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// failures turns the failed rows into one error for the exit code; the
// table above it already says what failed where.
func failures(rows []cli.Row, verb string) error {
	var msgs []string
	for _, r := range rows {
		switch {
		case r.Err == nil:
		case r.Kind == "":
			msgs = append(msgs, fmt.Sprintf("%s: %v", r.Cluster, r.Err))
		default:
			msgs = append(msgs, fmt.Sprintf("%s: %s %s/%s: %v", r.Cluster, cli.LowerKind(r.Kind), r.Namespace, r.Name, r.Err))
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	slices.Sort(msgs)
	msgs = slices.Compact(msgs)
	return fmt.Errorf("%s failed for %d object(s):\n  %s", verb, len(msgs), strings.Join(msgs, "\n  "))
}
