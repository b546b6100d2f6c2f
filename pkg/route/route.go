package route

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/routing"
)

// Request is one `kubectl mesh route`, its flags parsed: version routing
// (Weights, Match, Otherwise, Remove) or a locality Policy.
type Request struct {
	Service, Namespace string
	// Context is the cluster version routing writes into; Contexts are the
	// clusters a locality policy is written into (default: Context).
	Context  string
	Contexts []string
	Weights  []routing.Weight
	// Match is the rule's match, parsed from When (kept for messages).
	Match     *routing.Match
	When      string
	Otherwise string
	Remove    bool
	Policy    *builders.LocalityPolicy
	// Host is the rule that gets Policy: "global" (the .global rule an
	// export wrote) or "local" (the Service's own).
	Host string
	// VersionLabel is the Pod label whose values are versions.
	VersionLabel string
	DryRun       cli.DryRun
}

// Router runs requests with the clients of Factory; Warnings gets what it
// leaves alone and why.
type Router struct {
	Factory  cli.Factory
	Warnings io.Writer
}

// Run writes the VirtualService or the locality policy. Its rows say what
// happened to each object; a locality policy fails in each cluster on its
// own (a failed row), while version routing stops at the first error.
func (r Router) Run(ctx context.Context, req Request) ([]cli.Row, error) {
	if req.Policy != nil {
		return r.locality(ctx, req), nil
	}
	return r.versions(ctx, req)
}

func (r Router) warn(format string, a ...any) {
	fmt.Fprintf(r.Warnings, "Warning: "+format+"\n", a...)
}

// change is one object to write, planned: desired state want over
// existing (nil: absent), or existing removed. A change that is done
// writes nothing; its row says why.
type change struct {
	row            cli.Row
	gvr            schema.GroupVersionResource
	existing, want *unstructured.Unstructured
	remove         bool
	done           bool
}

// commit writes one change; a client dry run writes nothing and shows
// what it would.
func commit(ctx context.Context, w cli.Writer, ch change) cli.Row {
	row := ch.row
	switch {
	case ch.done:
	case ch.remove:
		row.Action, row.Err = cli.Deleted, w.Delete(ctx, ch.gvr, ch.existing)
	case !w.DryRun.Writes():
		row.Action, row.Object = cli.Planned, ch.want
	default:
		row.Object, row.Action, row.Err = w.Put(ctx, ch.gvr, ch.existing, ch.want)
	}
	return row
}

// byName keys objects by namespace/name.
func byName(items []unstructured.Unstructured) map[string]*unstructured.Unstructured {
	out := make(map[string]*unstructured.Unstructured, len(items))
	for i := range items {
		out[items[i].GetNamespace()+"/"+items[i].GetName()] = &items[i]
	}
	return out
}

// userRule finds a DestinationRule kubectl-mesh did not write that applies
// to the Service: Istio merges no two rules for one host, so route leaves
// it alone rather than add a second.
func userRule(all map[string]*unstructured.Unstructured, name, namespace string) *unstructured.Unstructured {
	for _, key := range slices.Sorted(maps.Keys(all)) {
		if dr := all[key]; !builders.IsManaged(dr) && builders.SelectsLocalHost(dr, name, namespace, "") {
			return dr
		}
	}
	return nil
}

// userRuleNote says which subsets a DestinationRule the user owns must
// define for the routes.
func userRuleNote(cluster string, dr *unstructured.Unstructured, l builders.Local) string {
	missing := missingSubsets(dr, l.Versions)
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

func missingSubsets(dr *unstructured.Unstructured, want []string) []string {
	have := builders.SubsetNames(dr)
	return slices.DeleteFunc(slices.Clone(want), func(s string) bool { return slices.Contains(have, s) })
}

func annotation(u *unstructured.Unstructured, key string) string {
	if u == nil {
		return ""
	}
	return u.GetAnnotations()[key]
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
