package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli/clitest"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/status/statustest"
)

// fakeMesh is three fake clusters (cluster1 is the current context),
// handed to every command through the factory.
type fakeMesh struct {
	clusters clitest.Clusters
	certsDir string // --dir of the certs commands, when set
}

// run runs `kubectl mesh ARGS` on the fake clusters and returns stdout and
// stderr.
func (m *fakeMesh) run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	f := m.clusters.Factory(t)
	cf := f.Getter.(*genericclioptions.ConfigFlags)
	var out, errOut bytes.Buffer
	root := newCmdMesh(cf, f, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	if m.certsDir != "" && len(args) > 0 && args[0] == "certs" {
		args = append(args, "--dir", m.certsDir)
	}
	root.SetArgs(append([]string{"--kubeconfig", *cf.KubeConfig}, args...))
	err := root.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

// meshWithHTTPBin: cluster2 serves bar/httpbin (v1 Pods), every cluster
// has istio-system and an ingress gateway with a load balancer address.
func meshWithHTTPBin(*testing.T) *fakeMesh {
	m := &fakeMesh{}
	for i, name := range []string{"cluster1", "cluster2", "cluster3"} {
		objs := append(gatewayObjects(fmt.Sprintf("203.0.113.%d", i+1)), dnsObjects(fmt.Sprintf("10.96.%d.10", i+1))...)
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bar"}})
		if name == "cluster2" {
			objs = append(objs, statustest.HTTPBinService(), httpbinPod("v1"))
		}
		m.clusters = append(m.clusters, clitest.NewCluster(name, objs...))
	}
	return m
}

// TestEveryCommandDryRunAndOutput runs every command of kubectl mesh on
// fake clusters in each --dry-run strategy and each -o format: a client
// dry run sends no write, a server dry run sends every write marked
// dryRun=All, none writes for real; -o gives the same formats with the
// same meaning everywhere.
func TestEveryCommandDryRunAndOutput(t *testing.T) {
	tests := map[string]commandCase{
		"version": {args: []string{"version"}, mesh: meshWithHTTPBin},
		"status":  {args: []string{"status", "--contexts", "cluster1,cluster2"}, mesh: meshWithHTTPBin},
		"export":  {args: []string{"export", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster1"}, writes: true, objects: true, mesh: meshWithHTTPBin},
		"unexport": {args: []string{"unexport", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster1"}, writes: true, objects: true, emptyOK: true, mesh: meshWithHTTPBin,
			before: [][]string{{"export", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster1"}}},
		"route":            {args: []string{"route", "httpbin", "-n", "bar", "--context", "cluster2", "--to", "v1"}, writes: true, objects: true, mesh: meshWithHTTPBin},
		"route --failover": {args: []string{"route", "httpbin", "-n", "bar", "--context", "cluster2", "--host", "local", "--failover", "eu-west=eu-north"}, writes: true, objects: true, mesh: meshWithHTTPBin},
		"certs install":    {args: []string{"certs", "install", "--contexts", "cluster1,cluster2"}, writes: true, objects: true, mesh: meshWithHTTPBin, certs: true},
		"link": {args: []string{"link", "--from", "cluster1", "--to", "cluster2"}, writes: true, objects: true, mesh: meshWithHTTPBin, certs: true,
			before: [][]string{{"certs", "install", "--contexts", "cluster1,cluster2"}}},
		"unlink": {args: []string{"unlink", "--from", "cluster1", "--to", "cluster2"}, writes: true, objects: true, emptyOK: true, mesh: meshWithHTTPBin, certs: true,
			before: [][]string{{"certs", "install", "--contexts", "cluster1,cluster2"}, {"link", "--from", "cluster1", "--to", "cluster2"}}},
		"certs root":         {args: []string{"certs", "root", "--key-algorithm", "ecdsa", "--force"}, mesh: meshWithHTTPBin, certs: true},
		"certs intermediate": {args: []string{"certs", "intermediate", "cluster1", "--force"}, mesh: meshWithHTTPBin, certs: true},
		"certs rotate":       {args: []string{"certs", "rotate", "cluster1"}, mesh: meshWithHTTPBin, certs: true},
		"certs verify": {args: []string{"certs", "verify", "--contexts", "cluster1"}, mesh: meshWithHTTPBin, certs: true,
			before: [][]string{{"certs", "install", "--contexts", "cluster1"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { tc.check(t) })
	}
}

type commandCase struct {
	args    []string // the command, without --dry-run and -o
	writes  bool     // it writes, so it takes --dry-run
	objects bool     // -o prints API objects (else a report)
	emptyOK bool     // -o may print an empty List
	mesh    func(t *testing.T) *fakeMesh
	before  [][]string // commands that set the clusters up
	certs   bool       // it needs --dir with a root and intermediates for every cluster
}

func (c commandCase) setUp(t *testing.T) *fakeMesh {
	t.Helper()
	m := c.mesh(t)
	if c.certs {
		m.certsDir = filepath.Join(t.TempDir(), "certs")
		for _, args := range [][]string{{"certs", "root", "--key-algorithm", "ecdsa"}, {"certs", "intermediate", "cluster1", "cluster2", "cluster3"}} {
			if out, errOut, err := m.run(t, args...); err != nil {
				t.Fatalf("set-up %v: %v\n%s%s", args, err, out, errOut)
			}
		}
	}
	for _, args := range c.before {
		if out, errOut, err := m.run(t, args...); err != nil {
			t.Fatalf("set-up %v: %v\n%s%s", args, err, out, errOut)
		}
	}
	m.clusters.Reset()
	return m
}

func (c commandCase) check(t *testing.T) {
	if !c.writes {
		m := c.setUp(t)
		if _, _, err := m.run(t, append(c.args, "--dry-run=client")...); err == nil || !strings.Contains(err.Error(), "unknown flag") {
			t.Errorf("%v --dry-run: %v, want an unknown flag (it writes nothing)", c.args, err)
		}
		if out, errOut, err := m.run(t, c.args...); err != nil || out == "" {
			t.Errorf("%v: %v\n%s%s", c.args, err, out, errOut)
		}
		if w := m.clusters.Writes(); len(w) != 0 {
			t.Errorf("%v wrote: %v", c.args, w)
		}
	}
	for _, dry := range []cli.DryRun{cli.DryRunNone, cli.DryRunClient, cli.DryRunServer} {
		if !c.writes {
			break
		}
		t.Run("dry-run="+dry.String(), func(t *testing.T) { c.checkDryRun(t, dry) })
	}
	formats := []string{"yaml", "json", "name", "jsonpath={.kind}"}
	for _, format := range formats {
		t.Run("o="+format, func(t *testing.T) { c.checkOutput(t, format) })
	}
}

func (c commandCase) checkDryRun(t *testing.T, dry cli.DryRun) {
	m := c.setUp(t)
	out, errOut, err := m.run(t, append(c.args, "--dry-run="+dry.String())...)
	if err != nil {
		t.Fatalf("%v --dry-run=%s: %v\n%s%s", c.args, dry, err, out, errOut)
	}
	if dry != cli.DryRunNone && !strings.Contains(out+errOut, dry.Suffix()) {
		t.Errorf("--dry-run=%s: the output does not say%q:\n%s%s", dry, dry.Suffix(), out, errOut)
	}
	clitest.CheckDryRun(t, dry, m.clusters.Writes())
}

func (c commandCase) checkOutput(t *testing.T, format string) {
	m := c.setUp(t)
	args := append(append([]string{}, c.args...), "-o", format)
	if c.writes {
		args = append(args, "--dry-run=client")
	}
	out, errOut, err := m.run(t, args...)
	if !c.objects && (format == "name" || strings.HasPrefix(format, "jsonpath={.kind}")) {
		if format == "name" && (err == nil || !strings.Contains(err.Error(), "report")) {
			t.Errorf("%v: %v, want -o name refused: this command prints a report", args, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%v: %v\n%s%s", args, err, out, errOut)
	}
	switch format {
	case "json", "yaml":
		// YAML is a superset of JSON: one decoder reads both.
		var v map[string]any
		if err := yaml.Unmarshal([]byte(out), &v); err != nil || len(v) == 0 || (format == "json" && !json.Valid([]byte(out))) {
			t.Fatalf("%v printed no %s (%v):\n%s", args, format, err, out)
		}
		if c.objects && (v["kind"] != "List" || (!c.emptyOK && len(v["items"].([]any)) == 0)) {
			t.Fatalf("%v: want one List of the objects:\n%s", args, out)
		}
	case "name":
		lines := strings.Fields(out)
		if len(lines) == 0 && !c.emptyOK {
			t.Fatalf("%v printed no names", args)
		}
		for _, l := range lines {
			if !strings.Contains(l, "/") {
				t.Errorf("%v: %q is not KIND/NAME", args, l)
			}
		}
	default:
		if out != "List" {
			t.Errorf("%v printed %q, want List", args, out)
		}
	}
}

// gatewayObjects are istio-system and its ingress gateway, reachable at
// lbIP on 15443.
func gatewayObjects(lbIP string) []runtime.Object {
	return []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rules.IstioSystemNamespace}},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "istio-ingressgateway", Namespace: rules.IstioSystemNamespace, Labels: map[string]string{"istio": "ingressgateway"}},
			Spec: corev1.ServiceSpec{
				Type:     corev1.ServiceTypeLoadBalancer,
				Selector: map[string]string{"istio": "ingressgateway"},
				Ports:    []corev1.ServicePort{{Name: "tls", Port: 15443, TargetPort: intstr.FromInt32(15443), NodePort: 31443}},
			},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: lbIP}}}},
		},
	}
}

func httpbinPod(version string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "httpbin-" + version, Namespace: "bar", Labels: map[string]string{"app": "httpbin", "version": version}}}
}

// dnsObjects are CoreDNS's ConfigMap and istiocoredns at ip.
func dnsObjects(ip string) []runtime.Object {
	return []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"}, Data: map[string]string{"Corefile": clitest.Corefile}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "istiocoredns", Namespace: rules.IstioSystemNamespace}, Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}}},
	}
}
