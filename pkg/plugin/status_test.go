package plugin

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
)

func TestStatusValidate(t *testing.T) {
	tests := map[string]struct {
		o      StatusOptions
		output string
		want   string // "" means valid
	}{
		"defaults":           {o: StatusOptions{Timeout: time.Second}},
		"-o yaml":            {o: StatusOptions{Timeout: time.Second}, output: "yaml"},
		"empty context name": {o: StatusOptions{Contexts: []string{"a", ""}, Timeout: time.Second}, want: "--contexts has an empty name"},
		"no timeout":         {o: StatusOptions{Timeout: 0}, want: "--peer-timeout must be positive"},
		"-o name":            {o: StatusOptions{Timeout: time.Second}, output: "name", want: `--output "name" is not supported`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.o.PrintFlags = cli.NewReportPrintFlags()
			*tc.o.PrintFlags.OutputFormat = tc.output
			err := tc.o.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate(%+v, -o %q) = %v", tc.o, tc.output, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate(%+v, -o %q) = %v, want an error with %q", tc.o, tc.output, err, tc.want)
			}
		})
	}
}

// The table and -o json are what they were before status was split into
// fetch, check and print (testdata holds the output of that version on
// the same clusters); yaml and jsonpath print the same report.
func TestStatusOutput(t *testing.T) {
	f := richMesh(t).Factory(t)
	run := func(args ...string) string {
		var out bytes.Buffer
		cmd := NewCmdStatus(f, genericiooptions.IOStreams{Out: &out, ErrOut: &out})
		cmd.SetArgs(append([]string{"--contexts", "cluster1,cluster2"}, args...))
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		if err := cmd.ExecuteContext(t.Context()); err == nil || err.Error() != "3 problem(s) found" {
			t.Errorf("status %v: %v, want 3 problems", args, err)
		}
		return out.String()
	}
	for args, golden := range map[string]string{"": "status-table.golden", "-o json": "status.json.golden"} {
		want, err := os.ReadFile(filepath.Join("testdata", golden))
		if err != nil {
			t.Fatal(err)
		}
		if got := run(strings.Fields(args)...); got != string(want) {
			t.Errorf("status %s differs from testdata/%s:\n%s\nwant:\n%s", args, golden, got, want)
		}
	}
	var fromJSON, fromYAML mesh.Report
	if err := json.Unmarshal([]byte(run("-o", "json")), &fromJSON); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(run("-o", "yaml")), &fromYAML); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromJSON, fromYAML) {
		t.Errorf("-o yaml is another report than -o json:\n%+v\n%+v", fromYAML, fromJSON)
	}
	if got := run("-o", "jsonpath={.problems[*].kind}"); got != "LinkIncomplete PeerUnreachable RemoteServerUnreachable" {
		t.Errorf("-o jsonpath = %q", got)
	}
}
