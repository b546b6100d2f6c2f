package cli

import (
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

const remoteKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c2
  cluster: {server: "https://203.0.113.9:6443", insecure-skip-tls-verify: true}
users:
- name: reader
  user: {token: abc}
contexts:
- name: c2
  context: {cluster: c2, user: reader}
current-context: c2
`

func TestClusterFromKubeconfig(t *testing.T) {
	wrapped := false
	f := Factory{WrapConfig: func(*rest.Config) { wrapped = true }}.WithTimeout(3 * time.Second)
	c, err := f.ClusterFromKubeconfig([]byte(remoteKubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	if c.Context != "c2" || c.Config.Host != "https://203.0.113.9:6443" || c.Config.BearerToken != "abc" {
		t.Errorf("cluster %q at %q with token %q; want c2 at https://203.0.113.9:6443 as the kubeconfig's token", c.Context, c.Config.Host, c.Config.BearerToken)
	}
	if c.Config.Timeout != 3*time.Second || !wrapped || c.Config.QPS != defaultQPS {
		t.Errorf("timeout %v, wrapped %v, qps %v: the factory's settings were not applied", c.Config.Timeout, wrapped, c.Config.QPS)
	}
	if _, err := f.ClusterFromKubeconfig([]byte("not: [a kubeconfig")); err == nil {
		t.Error("a kubeconfig that does not parse gave clients")
	}
}

func TestFailures(t *testing.T) {
	if err := Failures([]Row{{Cluster: "c1", Action: Created}}, "export"); err != nil {
		t.Errorf("Failures(no errors) = %v", err)
	}
	err := Failures([]Row{
		{Cluster: "c9", Action: Failed, Err: errors.New("context unknown")},
		{Cluster: "c1", Kind: rules.KindServiceEntry, Namespace: "bar", Name: "x", Action: Failed, Err: errors.New("boom")},
		{Cluster: "c1", Kind: rules.KindServiceEntry, Namespace: "bar", Name: "x", Action: Failed, Err: errors.New("boom")},
	}, "route")
	if err == nil || !strings.Contains(err.Error(), "route failed for 2 object(s)") || !strings.Contains(err.Error(), "c9: context unknown") || !strings.Contains(err.Error(), "c1: serviceentry bar/x: boom") {
		t.Errorf("Failures() = %v, want both failures, the same one once", err)
	}
}
