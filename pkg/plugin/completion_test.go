package plugin

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

const completionKubeconfig = `apiVersion: v1
kind: Config
clusters:
- {name: c, cluster: {server: "https://127.0.0.1:1"}}
users:
- {name: u, user: {token: t}}
contexts:
- {name: cluster1, context: {cluster: c, user: u}}
- {name: cluster2, context: {cluster: c, user: u}}
- {name: east, context: {cluster: c, user: u}}
current-context: cluster1
`

// newCompletionRoot is the real root command plus a command shaped like the
// cluster commands (a --to list, a --contexts list, --from), so the walk is
// tested on flags it has never been told about by command.
func newCompletionRoot(t *testing.T) (*cobra.Command, *bytes.Buffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(completionKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	streams := genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &bytes.Buffer{}}
	flags := genericclioptions.NewConfigFlags(true)
	root := newCmdMesh(flags, cli.NewFactory(flags), streams)
	fake := &cobra.Command{Use: "fake", RunE: func(*cobra.Command, []string) error { return nil }}
	fake.Flags().String("from", "", "")
	fake.Flags().StringSlice("to", nil, "")
	fake.Flags().StringSlice("contexts", nil, "")
	fake.Flags().String("dir", "", "")
	root.AddCommand(fake)
	RegisterCompletions(root, cli.NewFactory(flags))
	root.SetArgs(nil)
	if err := root.PersistentFlags().Set("kubeconfig", path); err != nil {
		t.Fatal(err)
	}
	return root, &out
}

// completions runs cobra's __complete and returns the candidates and the
// directive line.
func completions(t *testing.T, args ...string) ([]string, string) {
	t.Helper()
	root, out := newCompletionRoot(t)
	root.SetArgs(append([]string{cobra.ShellCompRequestCmd}, args...))
	if err := root.Execute(); err != nil {
		t.Fatalf("__complete %v: %v", args, err)
	}
	var got []string
	directive := ""
	for line := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		if strings.HasPrefix(line, ":") {
			directive = line
			break
		}
		got = append(got, line)
	}
	return got, directive
}

func TestCompleteContexts(t *testing.T) {
	tests := map[string]struct {
		args []string
		want []string
	}{
		"--context on a leaf command": {args: []string{"version", "--context", ""}, want: []string{"cluster1", "cluster2", "east"}},
		"--context by prefix":         {args: []string{"version", "--context", "clu"}, want: []string{"cluster1", "cluster2"}},
		"--from":                      {args: []string{"fake", "--from", "e"}, want: []string{"east"}},
		"--to second item":            {args: []string{"fake", "--to", "cluster1,"}, want: []string{"cluster1,cluster2", "cluster1,east"}},
		"--contexts NAME=CONTEXT":     {args: []string{"fake", "--contexts", "one=cluster2,two=c"}, want: []string{"one=cluster2,two=cluster1"}},
		"no match":                    {args: []string{"fake", "--to", "nope"}, want: nil},
		"other flags untouched":       {args: []string{"fake", "--dir", ""}, want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, directive := completions(t, tc.args...)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("__complete %q = %q, want %q", tc.args, got, tc.want)
			}
			if tc.want != nil && directive != ":4" {
				t.Fatalf("__complete %q directive = %q, want :4 (no file completion)", tc.args, directive)
			}
		})
	}
}

// An unreachable cluster must give no candidates quickly rather than an
// error that the shell would print into the command line.
func TestCompleteNamespacesUnreachable(t *testing.T) {
	got, directive := completions(t, "version", "-n", "")
	if len(got) != 0 || directive != ":4" {
		t.Fatalf("got %q %s, want nothing and :4", got, directive)
	}
}
