package plugin

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

func TestExportValidate(t *testing.T) {
	tests := map[string]struct {
		mutate func(*ExportOptions)
		err    string
	}{
		"ok":                      {mutate: func(*ExportOptions) {}},
		"nothing to export":       {mutate: func(o *ExportOptions) { o.Services = nil }, err: "SERVICE..., -l SELECTOR or --all"},
		"names and --all":         {mutate: func(o *ExportOptions) { o.All = true }, err: "only one of"},
		"namespaced name":         {mutate: func(o *ExportOptions) { o.Services = []string{"bar/httpbin"} }, err: "-n"},
		"no --to":                 {mutate: func(o *ExportOptions) { o.To = nil }, err: "--to is required"},
		"--to is the source":      {mutate: func(o *ExportOptions) { o.To = []string{"cluster2"} }, err: "also the source"},
		"--to twice":              {mutate: func(o *ExportOptions) { o.To = []string{"cluster1", "cluster1"} }, err: "twice"},
		"bad -o":                  {mutate: func(o *ExportOptions) { out := "table"; o.PrintFlags.OutputFormat = &out }, err: "--output"},
		"cluster name with comma": {mutate: func(o *ExportOptions) { o.FromClusterName = "a,b" }, err: "--from-cluster-name"},
		"bad cluster domain":      {mutate: func(o *ExportOptions) { o.ClusterDomain = "Corp_Internal" }, err: "--source-cluster-domain"},
		"--via-egress refused":    {mutate: func(o *ExportOptions) { o.ViaEgress = true }, err: "--via-egress is refused"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := &ExportOptions{
				exportScope: exportScope{
					Services: []string{"httpbin"}, From: "cluster2", To: []string{"cluster1"},
					FromClusterName: "cluster2", PrintFlags: cli.NewPrintFlags("exported"),
				},
				ClusterDomain: rules.DefaultClusterDomain,
			}
			tc.mutate(o)
			err := o.Validate()
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.err)
			}
		})
	}
}

// --dry-run is parsed once, in Complete: a bare --dry-run is client, as in
// kubectl, and a bad value is refused naming the flag, for export and
// unexport alike.
func TestDryRunFlag(t *testing.T) {
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}
	tests := map[string]struct {
		args    []string
		want    cli.DryRun
		wantErr string
	}{
		"absent":  {want: cli.DryRunNone},
		"bare":    {args: []string{"--dry-run"}, want: cli.DryRunClient},
		"server":  {args: []string{"--dry-run=server"}, want: cli.DryRunServer},
		"unknown": {args: []string{"--dry-run=maybe"}, wantErr: `--dry-run "maybe"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := meshFlags(t)
			eo := NewExportOptions(f, streams)
			uo := NewUnexportOptions(f, streams)
			for cmdName, c := range map[string]struct {
				flagged  *cobra.Command
				complete func(flag string) (cli.DryRun, error)
			}{
				"export": {NewCmdExport(f, streams), func(flag string) (cli.DryRun, error) {
					eo.dryRunFlag, eo.From, eo.To = flag, "c2", []string{"c1"}
					err := eo.Complete(nil, []string{"httpbin"})
					return eo.dryRun, err
				}},
				"unexport": {NewCmdUnexport(f, streams), func(flag string) (cli.DryRun, error) {
					uo.dryRunFlag, uo.From, uo.To = flag, "c2", []string{"c1"}
					err := uo.Complete(nil, []string{"httpbin"})
					return uo.dryRun, err
				}},
			} {
				if err := c.flagged.ParseFlags(tc.args); err != nil {
					t.Fatal(err)
				}
				flag, _ := c.flagged.Flags().GetString("dry-run")
				got, err := c.complete(flag)
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Errorf("%s %v: Complete() = %v, want an error containing %q", cmdName, tc.args, err, tc.wantErr)
					}
					continue
				}
				if err != nil || got != tc.want {
					t.Errorf("%s %v: dry run %v, %v; want %v", cmdName, tc.args, got, err, tc.want)
				}
			}
		})
	}
}

func TestPrintRows(t *testing.T) {
	se, err := builders.ServiceEntry(builders.Export{
		Name: "helloworld", Namespace: "hello",
		Ports:   []builders.Port{{Name: "http", Number: 5000, Protocol: "HTTP"}},
		Sources: []builders.Source{{Cluster: "cluster3", GatewayHost: "198.51.100.31", GatewayPort: 31443}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rows := []cli.Row{
		{Cluster: "cluster1", Kind: rules.KindServiceEntry, Namespace: "hello", Name: "helloworld-hello", Action: cli.Created, VIP: "240.0.0.4", Gateway: "198.51.100.31:31443", Object: se},
		{Cluster: "cluster9", Action: cli.Failed, Err: errors.New(`context "cluster9" is not in the kubeconfig`)},
	}
	tests := map[string]struct {
		output string
		want   []string
	}{
		"table":    {want: []string{"CLUSTER", "MESSAGE", "serviceentry/helloworld-hello", "created (dry run)", "240.0.0.4", `context "cluster9"`}},
		"name":     {output: "name", want: []string{"serviceentry.networking.istio.io/helloworld-hello"}},
		"jsonpath": {output: "jsonpath={.items[0].spec.endpoints[0].ports.http}", want: []string{"31443"}},
		"yaml":     {output: "yaml", want: []string{"kind: List", "kind: ServiceEntry", "helloworld.hello.global"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pf := cli.NewPrintFlags("exported")
			pf.OutputFormat = &tc.output
			var out strings.Builder
			if err := cli.PrintRows(&out, pf, rows, " (dry run)"); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("-o %q output lacks %q:\n%s", tc.output, w, out.String())
				}
			}
		})
	}
}
