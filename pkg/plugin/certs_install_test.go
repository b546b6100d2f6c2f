package plugin

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// --dry-run and -o come from the kit: a client dry run asks no cluster, a
// server dry run sends every write marked dry, and -o prints the Secrets
// (with their key) while the messages go to stderr.
func TestCertsInstallDryRunAndOutput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	mustCerts(t, "root", "--dir", dir, "--key-algorithm", "ecdsa")
	mustCerts(t, "intermediate", "c1", "--dir", dir)
	istiod := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "istiod", Namespace: rules.IstioSystemNamespace}}
	tests := map[string]struct {
		flags      []string
		wantMsg    string
		wantOut    []string // in stdout
		wantWrites int      // requests that write, each marked dry unless none
	}{
		"client dry run asks nothing": {
			flags: []string{"--dry-run"}, wantMsg: "secret istio-system/cacerts would be created or updated (dry run)",
		},
		"server dry run": {
			flags: []string{"--dry-run=server", "--restart"}, wantMsg: "secret istio-system/cacerts created (server dry run)", wantWrites: 2,
		},
		"-o yaml prints the Secret with its key, messages on stderr": {
			flags: []string{"--dry-run=client", "-o", "yaml"}, wantMsg: "(dry run)",
			wantOut: []string{"kind: List", "kind: Secret", "name: cacerts", "ca-key.pem:"},
		},
		"-o name": {
			flags: []string{"-o", "name"}, wantMsg: "secret istio-system/cacerts created\n", wantOut: []string{"secret/cacerts\n"}, wantWrites: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			kube := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rules.IstioSystemNamespace}}, istiod)
			clusters := map[string]kubernetes.Interface{"ctx": kube}
			if name == "client dry run asks nothing" {
				clusters = nil // any request would fail: no cluster for ctx
			}
			out, errOut, err := installer(t, clusters, append([]string{dir, "c1=ctx"}, tc.flags...)...)
			if err != nil {
				t.Fatalf("install %v: %v\n%s%s", tc.flags, err, out, errOut)
			}
			msgs := out + errOut
			if len(tc.wantOut) > 0 {
				msgs = errOut
			}
			if !strings.Contains(msgs, tc.wantMsg) {
				t.Errorf("install %v: messages lack %q:\n%s", tc.flags, tc.wantMsg, msgs)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("install %v: stdout lacks %q:\n%s", tc.flags, w, out)
				}
			}
			if len(tc.wantOut) == 0 && strings.Contains(out, "PRIVATE KEY") {
				t.Errorf("install %v printed a private key without -o:\n%s", tc.flags, out)
			}
			var writes []clienttesting.Action
			for _, a := range kube.Actions() {
				if v := a.GetVerb(); v != "get" && v != "list" && v != "watch" {
					writes = append(writes, a)
				}
			}
			if len(writes) != tc.wantWrites {
				t.Fatalf("install %v sent %d writes, want %d: %v", tc.flags, len(writes), tc.wantWrites, writes)
			}
			dry := slices.Contains(tc.flags, "--dry-run=server")
			for _, a := range writes {
				var got []string
				switch w := a.(type) {
				case clienttesting.CreateActionImpl:
					got = w.GetCreateOptions().DryRun
				case clienttesting.PatchActionImpl:
					got = w.GetPatchOptions().DryRun
				}
				if (len(got) == 1 && got[0] == metav1.DryRunAll) != dry {
					t.Errorf("install %v: %s %s sent with dryRun %v", tc.flags, a.GetVerb(), a.GetResource().Resource, got)
				}
			}
		})
	}
}
