package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/yaml"
)

// PrintFlags is -o for every command: cli-runtime's formats (yaml, json,
// name, jsonpath, go-template, …), or the command's own table when -o is
// left out. A command that prints a report rather than API objects (status,
// version, certs verify) takes the formats that apply to any data: json,
// yaml, jsonpath and go-template.
type PrintFlags struct {
	*genericclioptions.PrintFlags
	reports bool
}

// NewPrintFlags is -o for a command that prints API objects; operation is
// what name output says was done to them ("exported", "linked", …).
func NewPrintFlags(operation string) *PrintFlags {
	return &PrintFlags{PrintFlags: genericclioptions.NewPrintFlags(operation)}
}

// NewReportPrintFlags is -o for a command that prints a report.
func NewReportPrintFlags() *PrintFlags {
	return &PrintFlags{PrintFlags: genericclioptions.NewPrintFlags(""), reports: true}
}

// AddFlags adds -o and the template flags.
func (f *PrintFlags) AddFlags(cmd *cobra.Command) {
	f.PrintFlags.AddFlags(cmd)
	if f.reports {
		// name and kyaml output are about API objects; a report has none,
		// nor managed fields.
		cmd.Flags().Lookup("output").Usage = fmt.Sprintf("Output format. One of: (%s). Leave it out for a table.", strings.Join(reportFormats(), ", "))
		_ = cmd.Flags().MarkHidden("show-managed-fields")
	}
}

// Format is the -o value; "" is the table.
func (f *PrintFlags) Format() string {
	if f.OutputFormat == nil {
		return ""
	}
	return *f.OutputFormat
}

// Table says whether the command prints its own table.
func (f *PrintFlags) Table() bool { return f.Format() == "" }

// Validate checks -o (and its template) without printing anything.
func (f *PrintFlags) Validate() error {
	if f.Table() {
		return nil
	}
	if f.reports && !slices.Contains(reportFormats(), strings.SplitN(f.Format(), "=", 2)[0]) {
		return fmt.Errorf("--output %q is not supported: this command prints a report, not objects; use one of %s, or leave it out", f.Format(), strings.Join(reportFormats(), ", "))
	}
	if _, err := f.ToPrinter(); err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	return nil
}

func reportFormats() []string {
	all := genericclioptions.NewPrintFlags("").AllowedFormats()
	return slices.DeleteFunc(all, func(s string) bool { return s == "name" || s == "kyaml" })
}

// PrintObjects prints objs with -o, or calls table when -o is left out.
// yaml, json, jsonpath and templates get one List, so that the output of
// several clusters stays one document; name gets one line per object.
func (f *PrintFlags) PrintObjects(out io.Writer, objs []runtime.Object, table func(io.Writer) error) error {
	if f.Table() {
		return table(out)
	}
	p, err := f.ToPrinter()
	if err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	if f.Format() == "name" {
		for _, o := range objs {
			if err := p.PrintObj(o, out); err != nil {
				return err
			}
		}
		return nil
	}
	list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]any{}}}
	for _, o := range objs {
		u, err := toUnstructured(o)
		if err != nil {
			return err
		}
		list.Items = append(list.Items, *u)
	}
	return p.PrintObj(list, out)
}

// PrintReport prints a report (any value that encodes to JSON) with -o, or
// calls table when -o is left out.
func (f *PrintFlags) PrintReport(out io.Writer, report any, table func(io.Writer) error) error {
	switch f.Format() {
	case "":
		return table(out)
	case "json":
		b, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(out, string(b))
		return err
	case "yaml":
		b, err := yaml.Marshal(report)
		if err != nil {
			return err
		}
		_, err = out.Write(b)
		return err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	// jsonpath and templates read the report as the JSON it encodes to.
	b, err := json.Marshal(report)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("--output %s needs a report that is a JSON object: %w", f.Format(), err)
	}
	p, err := f.ToPrinter()
	if err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	return p.PrintObj(&unstructured.Unstructured{Object: m}, out)
}

func toUnstructured(o runtime.Object) (*unstructured.Unstructured, error) {
	if u, ok := o.(*unstructured.Unstructured); ok {
		return u, nil
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	if md, ok := m["metadata"].(map[string]any); ok && md["creationTimestamp"] == nil {
		delete(md, "creationTimestamp")
	}
	return u, nil
}
