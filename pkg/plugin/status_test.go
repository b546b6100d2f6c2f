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
	"github.com/kubectl-mesh/kubectl-mesh/pkg/status/statustest"
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

// The command prints the engine's table (testdata holds the output of the
// version before status was split into fetch, check and print, on the
// same clusters) or the report with -o; yaml and jsonpath print the same
// report as json.
func TestStatusOutput(t *testing.T) {
	f := statustest.Factory(statustest.RichMesh(t))
	run := func(args ...string) string {
		out, err := runStatus(t, f, append([]string{"--contexts", "cluster1,cluster2"}, args...)...)
		if err == nil || err.Error() != "3 problem(s) found" {
			t.Errorf("status %v: %v, want 3 problems", args, err)
		}
		return out
	}
	for args, golden := range map[string]string{"": "status-table.golden", "-o json": "status.json.golden"} {
		want, err := os.ReadFile(filepath.Join("..", "status", "testdata", golden))
		if err != nil {
			t.Fatal(err)
		}
		if got := run(strings.Fields(args)...); got != string(want) {
			t.Errorf("status %s differs from pkg/status/testdata/%s:\n%s\nwant:\n%s", args, golden, got, want)
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

// The exit code is 1 when there is a problem, and an error names the flag
// to fix.
func TestStatusErrors(t *testing.T) {
	_, kubeconfig := statustest.RichMesh(t)
	tests := map[string]struct {
		clusters map[string]*cli.Cluster
		args     []string
		want     string // the error; "" means none
		wantOut  string // in the output
	}{
		"a problem": {
			clusters: statustest.Mesh(t, nil, statustest.HandWrittenEntry),
			args:     []string{"--contexts", "cluster1,cluster2"},
			want:     "1 problem(s) found", wantOut: "PROBLEMS (1)",
		},
		"no problem": {
			clusters: statustest.Mesh(t, nil, statustest.HandWrittenEntry, statustest.RemoteSNIRule),
			args:     []string{"--contexts", "cluster1,cluster2"},
			wantOut:  "No problems found.",
		},
		"named context unreachable": {
			clusters: statustest.Mesh(t, nil),
			args:     []string{"--contexts", "cluster1,cluster3"},
			want:     "--contexts: no cluster cluster3",
		},
		"no context has a mesh": {
			want: "no context of the kubeconfig has a reachable cluster with namespace istio-system; pass --contexts",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := runStatus(t, statustest.Factory(tc.clusters, kubeconfig), tc.args...)
			if (tc.want == "" && err != nil) || (tc.want != "" && (err == nil || err.Error() != tc.want)) {
				t.Errorf("status %v: %v, want %q", tc.args, err, tc.want)
			}
			if !strings.Contains(out, tc.wantOut) {
				t.Errorf("status %v printed no %q:\n%s", tc.args, tc.wantOut, out)
			}
		})
	}
}

// runStatus runs `kubectl mesh status args…` with the factory's clusters.
func runStatus(t *testing.T, f cli.Factory, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := NewCmdStatus(f, genericiooptions.IOStreams{Out: &out, ErrOut: &out})
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}
