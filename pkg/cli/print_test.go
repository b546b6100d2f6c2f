package cli_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
)

func printFlags(t *testing.T, pf *cli.PrintFlags, args ...string) *cli.PrintFlags {
	t.Helper()
	cmd := &cobra.Command{Use: "x"}
	pf.AddFlags(cmd)
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatal(err)
	}
	return pf
}

func TestPrintObjects(t *testing.T) {
	objs := []runtime.Object{configMap("a", true), configMap("b", false)}
	table := func(w io.Writer) error { _, err := io.WriteString(w, "TABLE\n"); return err }
	tests := map[string]struct {
		args []string
		want []string
	}{
		"table":    {nil, []string{"TABLE"}},
		"yaml":     {[]string{"-o", "yaml"}, []string{"kind: List", "data: a", "data: b"}},
		"json":     {[]string{"-o", "json"}, []string{`"kind": "List"`, `"data": "a"`}},
		"name":     {[]string{"-o", "name"}, []string{"configmap/cm\nconfigmap/cm\n"}},
		"jsonpath": {[]string{"-o", "jsonpath={.items[*].spec.data}"}, []string{"a b"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pf := printFlags(t, cli.NewPrintFlags("exported"), tc.args...)
			if err := pf.Validate(); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := pf.PrintObjects(&out, objs, table); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("%v printed\n%s\nwant %q in it", tc.args, out.String(), w)
				}
			}
		})
	}
	if err := printFlags(t, cli.NewPrintFlags("x"), "-o", "wat").Validate(); err == nil || !strings.Contains(err.Error(), "--output") {
		t.Errorf("-o wat: %v, want an error naming --output", err)
	}
}

func TestPrintReport(t *testing.T) {
	report := map[string]any{"clusters": []map[string]string{{"name": "c1"}}}
	table := func(io.Writer) error { t.Fatal("table printed"); return nil }
	for args, want := range map[string]string{
		"json":                         `"name": "c1"`,
		"yaml":                         "- name: c1",
		"jsonpath={.clusters[0].name}": "c1",
	} {
		pf := printFlags(t, cli.NewReportPrintFlags(), "-o", args)
		var out bytes.Buffer
		if err := pf.PrintReport(&out, report, table); err != nil || !strings.Contains(out.String(), want) {
			t.Errorf("-o %s: %v\n%s\nwant %q", args, err, out.String(), want)
		}
	}
	for _, format := range []string{"name", "kyaml", "wat"} {
		if err := printFlags(t, cli.NewReportPrintFlags(), "-o", format).Validate(); err == nil || !strings.Contains(err.Error(), "report") {
			t.Errorf("-o %s on a report: %v, want refused", format, err)
		}
	}
}
