package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/version"
)

func TestVersionOutput(t *testing.T) {
	info := version.Get()
	js, _ := json.MarshalIndent(info, "", "  ")
	tests := map[string]struct {
		args    []string
		want    string
		wantErr string
	}{
		"table":    {want: fmt.Sprintf("kubectl-mesh %s (commit %s, %s, %s)\n", info.Version, info.Commit, info.GoVersion, info.Platform)},
		"json":     {args: []string{"-o", "json"}, want: string(js) + "\n"},
		"yaml":     {args: []string{"-o", "yaml"}, want: fmt.Sprintf("commit: %s\ngoVersion: %s\nplatform: %s\nversion: %s\n", info.Commit, info.GoVersion, info.Platform, info.Version)},
		"jsonpath": {args: []string{"-o", "jsonpath={.version}"}, want: info.Version},
		"name":     {args: []string{"-o", "name"}, wantErr: `--output "name" is not supported`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			cmd := NewCmdVersion(genericiooptions.IOStreams{Out: &out, ErrOut: &out})
			cmd.SetArgs(tc.args)
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			err := cmd.Execute()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("version %v: %v, want an error with %q", tc.args, err, tc.wantErr)
				}
				return
			}
			if err != nil || out.String() != tc.want {
				t.Fatalf("version %v = %q, %v; want %q", tc.args, out.String(), err, tc.want)
			}
		})
	}
}
