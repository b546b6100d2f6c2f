package cli

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"
)

// Row is one line of the table of export, unexport and route: an object
// in a cluster and what happened to it. A row without Kind is about the whole cluster.
type Row struct {
	Cluster   string
	Kind      string
	Namespace string
	Name      string
	Action    Action
	VIP       string
	Gateway   string
	Err       error
	Object    *unstructured.Unstructured // what the cluster holds now (or would)
}

// SortRows orders rows by cluster, namespace, name and kind: one stable
// table whatever order the work finished in.
func SortRows(rows []Row) {
	slices.SortStableFunc(rows, func(a, b Row) int {
		return cmp.Or(cmp.Compare(a.Cluster, b.Cluster), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Kind, b.Kind))
	})
}

// PrintRows prints the table of rows, or with -o the objects the clusters
// hold now (see PrintFlags.PrintObjects).
func PrintRows(out io.Writer, pf *PrintFlags, rows []Row, dryRunSuffix string) error {
	var objs []runtime.Object
	for _, r := range rows {
		if r.Object != nil {
			objs = append(objs, r.Object)
		}
	}
	return pf.PrintObjects(out, objs, func(out io.Writer) error { return rowTable(out, rows, dryRunSuffix) })
}

func rowTable(out io.Writer, rows []Row, dryRunSuffix string) error {
	tw := printers.GetNewTabWriter(out)
	withMessage := slices.ContainsFunc(rows, func(r Row) bool { return r.Err != nil })
	header := "CLUSTER\tNAMESPACE\tOBJECT\tACTION\tVIP\tGATEWAY"
	if withMessage {
		header += "\tMESSAGE"
	}
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		obj := "-"
		if r.Kind != "" {
			obj = LowerKind(r.Kind) + "/" + r.Name
		}
		action := string(r.Action) + dryRunSuffix
		if r.Err != nil {
			action = string(Failed)
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", r.Cluster, dash(r.Namespace), obj, action, dash(r.VIP), dash(r.Gateway))
		if withMessage && r.Err != nil {
			line += "\t" + r.Err.Error()
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

// LowerKind is how a table names a kind, as kubectl does.
func LowerKind(kind string) string {
	switch kind {
	case "ServiceEntry":
		return "serviceentry"
	case "DestinationRule":
		return "destinationrule"
	case "Namespace":
		return "namespace"
	case "Service":
		return "service"
	case "VirtualService":
		return "virtualservice"
	}
	return kind
}

// dash stands for an empty cell.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Failures turns the failed rows of a table into one error for the exit
// code; the table above it already says what failed where. verb names the
// command ("route failed for …").
func Failures(rows []Row, verb string) error {
	var msgs []string
	for _, r := range rows {
		switch {
		case r.Err == nil:
		case r.Kind == "":
			msgs = append(msgs, fmt.Sprintf("%s: %v", r.Cluster, r.Err))
		default:
			msgs = append(msgs, fmt.Sprintf("%s: %s %s/%s: %v", r.Cluster, LowerKind(r.Kind), r.Namespace, r.Name, r.Err))
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	slices.Sort(msgs)
	msgs = slices.Compact(msgs)
	return fmt.Errorf("%s failed for %d object(s):\n  %s", verb, len(msgs), strings.Join(msgs, "\n  "))
}
