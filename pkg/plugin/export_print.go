package plugin

import (
	"cmp"
	"fmt"
	"io"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
)

// meshRow is one line of the export/unexport table: an object in a cluster
// and what happened to it. A row without Kind is about the whole cluster.
type meshRow struct {
	Cluster   string
	Kind      string
	Namespace string
	Name      string
	Action    string
	VIP       string
	Gateway   string
	Err       error
	Object    *unstructured.Unstructured // what the cluster holds now (or would)
}

func sortRows(rows []meshRow) {
	slices.SortStableFunc(rows, func(a, b meshRow) int {
		return cmp.Or(cmp.Compare(a.Cluster, b.Cluster), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Kind, b.Kind))
	})
}

func validateOutput(pf *genericclioptions.PrintFlags) error {
	if pf.OutputFormat == nil || *pf.OutputFormat == "" {
		return nil
	}
	if _, err := pf.ToPrinter(); err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	return nil
}

// printRows prints the table, or with -o the objects the clusters hold now
// (yaml and json as one List, so that the output of several clusters stays
// one document).
func printRows(out io.Writer, pf *genericclioptions.PrintFlags, rows []meshRow, dryRunSuffix string) error {
	if pf.OutputFormat != nil && *pf.OutputFormat != "" {
		if *pf.OutputFormat == "name" {
			p, err := pf.ToPrinter()
			if err != nil {
				return err
			}
			for _, r := range rows {
				if r.Object != nil {
					if err := p.PrintObj(r.Object, out); err != nil {
						return err
					}
				}
			}
			return nil
		}
		list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]any{}}}
		for _, r := range rows {
			if r.Object != nil {
				list.Items = append(list.Items, *r.Object)
			}
		}
		p, err := pf.ToPrinter()
		if err != nil {
			return err
		}
		return p.PrintObj(list, out)
	}
	tw := printers.GetNewTabWriter(out)
	withMessage := slices.ContainsFunc(rows, func(r meshRow) bool { return r.Err != nil })
	header := "CLUSTER\tNAMESPACE\tOBJECT\tACTION\tVIP\tGATEWAY"
	if withMessage {
		header += "\tMESSAGE"
	}
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		obj := "-"
		if r.Kind != "" {
			obj = lowerKind(r.Kind) + "/" + r.Name
		}
		action := r.Action + dryRunSuffix
		if r.Err != nil {
			action = actionFailed
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", r.Cluster, dash(r.Namespace), obj, action, dash(r.VIP), dash(r.Gateway))
		if withMessage && r.Err != nil {
			line += "\t" + r.Err.Error()
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

func lowerKind(kind string) string {
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

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
