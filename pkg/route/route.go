package route

import (
	"context"
	"fmt"
	"io"
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

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
