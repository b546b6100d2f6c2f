package plugin

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli/clitest"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// linkFakes are two clusters on fakes: c1 with istiocoredns and CoreDNS,
// c2 with an ingress gateway.
func linkFakes(t *testing.T) cli.Factory {
	gw := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-ingressgateway", Namespace: rules.IstioSystemNamespace},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"istio": "ingressgateway"}, Ports: []corev1.ServicePort{{Name: "tls", Port: rules.GatewayPort}}},
		Status:     corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}}}},
	}
	return clitest.Clusters{
		clitest.NewCluster("c1",
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "istiocoredns", Namespace: rules.IstioSystemNamespace}, Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.10"}},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"}, Data: map[string]string{"Corefile": ".:53 {\n    forward . /etc/resolv.conf\n}\n"}},
		),
		clitest.NewCluster("c2", gw),
	}.Factory(t)
}

// link and unlink through their commands (Complete, Validate, Run) on
// fakes, in their dry-run and output modes: the step lines say the dry
// run, and with -o go to stderr while stdout holds the objects.
func TestLinkCommandOutputs(t *testing.T) {
	tests := map[string]struct {
		cmd        string
		args       []string
		stdout     []string // substrings of stdout
		stderr     []string
		stdoutJSON bool // stdout is one JSON List
	}{
		"link table, client dry run": {cmd: "link", args: []string{"--dry-run"},
			stdout: []string{"changed (dry run)", "record", "global forwarded to istiocoredns 10.0.0.10"}},
		"link yaml": {cmd: "link", args: []string{"--dry-run=client", "-o", "yaml"},
			stdout: []string{"kind: List", "kind: ConfigMap", "global:53", "name: mesh-link-c2", "kind: Gateway"}, stderr: []string{"changed (dry run)", "record"}},
		"link json": {cmd: "link", args: []string{"--dry-run=client", "-o", "json"}, stdoutJSON: true, stderr: []string{"dns"}},
		"link name": {cmd: "link", args: []string{"--dry-run=client", "-o", "name"},
			stdout: []string{"configmap/coredns", "configmap/mesh-link-c2", "gateway.networking.istio.io/cross-network-gateway"}, stderr: []string{"gateway *.local"}},
		"link jsonpath": {cmd: "link", args: []string{"--dry-run=client", "-o", "jsonpath={.items[*].metadata.name}"},
			stdout: []string{"coredns cross-network-gateway mesh-link-c2"}},
		"unlink, nothing linked":      {cmd: "unlink", args: []string{"--dry-run=server"}, stdout: []string{"skipped", "c1 is not linked to c2"}},
		"unlink json, nothing linked": {cmd: "unlink", args: []string{"-o", "json"}, stdoutJSON: true, stderr: []string{"c1 is not linked to c2"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			streams, _, out, errOut := genericiooptions.NewTestIOStreams()
			newCmd := NewCmdLink
			if tc.cmd == "unlink" {
				newCmd = NewCmdUnlink
			}
			cmd := newCmd(linkFakes(t), streams)
			args := []string{"--from", "c1", "--to", "c2"}
			if tc.cmd == "link" {
				args = append(args, "--skip-trust-check") // the fakes have no cacerts
			}
			cmd.SetArgs(append(args, tc.args...))
			if err := cmd.Execute(); err != nil {
				t.Fatalf("%s %v: %v\n%s", tc.cmd, tc.args, err, errOut)
			}
			t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
			has(t, "stdout", out, tc.stdout)
			has(t, "stderr", errOut, tc.stderr)
			if tc.stdoutJSON {
				var list struct{ Kind string }
				if err := json.Unmarshal(out.Bytes(), &list); err != nil || list.Kind != "List" {
					t.Errorf("stdout is not one JSON List (%v):\n%s", err, out)
				}
			}
		})
	}
}

func has(t *testing.T, what string, b *bytes.Buffer, wants []string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(b.String(), w) {
			t.Errorf("%s lacks %q:\n%s", what, w, b)
		}
	}
}
