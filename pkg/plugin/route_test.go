package plugin

import (
	"bytes"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli/clitest"
)

// The command parses --dry-run once and prints through the kit: one
// wording of the dry run in the table, -o for the objects.
func TestRouteCommandDryRunAndOutput(t *testing.T) {
	run := func(args ...string) (string, string, error) {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "helloworld", Namespace: "hello"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "helloworld"}}}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "hw-v1", Namespace: "hello", Labels: map[string]string{"app": "helloworld", "version": "v1"}}}
		f := clitest.Clusters{clitest.NewCluster("cluster1", svc, pod)}.Factory(t)
		// -n belongs to the root command's kubeconfig flags.
		ns := "hello"
		f.Getter.(*genericclioptions.ConfigFlags).Namespace = &ns
		var out, errOut bytes.Buffer
		cmd := NewCmdRoute(f, genericiooptions.IOStreams{Out: &out, ErrOut: &errOut})
		cmd.SetArgs(append([]string{"helloworld", "--to", "v1"}, args...))
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.ExecuteContext(t.Context())
		return out.String(), errOut.String(), err
	}
	tests := map[string]struct {
		args    []string
		want    []string
		wantErr string
	}{
		"bare --dry-run is client": {args: []string{"--dry-run"}, want: []string{"virtualservice/helloworld-hello-route", "planned (dry run)", "destinationrule/helloworld-hello-local"}},
		"server":                   {args: []string{"--dry-run=server"}, want: []string{"created (server dry run)"}},
		"none":                     {want: []string{"created   -"}},
		"-o yaml":                  {args: []string{"--dry-run=client", "-o", "yaml"}, want: []string{"kind: List", "kind: VirtualService", "subset: v1"}},
		"-o name":                  {args: []string{"-o", "name"}, want: []string{"virtualservice.networking.istio.io/helloworld-hello-route\n"}},
		"bad --dry-run":            {args: []string{"--dry-run=always"}, wantErr: `--dry-run "always" is not supported`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, errOut, err := run(tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("route %v: %v, want an error with %q", tc.args, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("route %v: %v\n%s", tc.args, err, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("route %v: output lacks %q:\n%s", tc.args, w, out)
				}
			}
			if len(tc.args) == 0 && strings.Contains(out, "dry run") {
				t.Errorf("route without --dry-run says dry run:\n%s", out)
			}
		})
	}
}
