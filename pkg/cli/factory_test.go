package cli

import (
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// The token check must ask as the token alone: a client certificate, a
// kubeconfig token or impersonation left in would answer for the user
// running link, not for the reader.
func TestAsTokenDropsTheKubeconfigsCredentials(t *testing.T) {
	c := &Cluster{Context: "c2", Config: &rest.Config{
		Host:            "https://10.0.0.2:6443",
		BearerToken:     "users-token",
		Impersonate:     rest.ImpersonationConfig{UserName: "admin"},
		TLSClientConfig: rest.TLSClientConfig{ServerName: "api.c2", CertData: []byte("cert"), KeyData: []byte("key")},
		Timeout:         3 * time.Second,
	}}
	wrapped := false
	f := Factory{WrapConfig: func(*rest.Config) { wrapped = true }}
	as, err := f.AsToken(c, "reader-token")
	if err != nil {
		t.Fatal(err)
	}
	cfg := as.Config
	if cfg.BearerToken != "reader-token" || len(cfg.CertData) != 0 || len(cfg.KeyData) != 0 || cfg.Impersonate.UserName != "" {
		t.Errorf("AsToken config keeps the kubeconfig's credentials: token %q, cert %q, impersonate %q", cfg.BearerToken, cfg.CertData, cfg.Impersonate.UserName)
	}
	if cfg.Host != c.Config.Host || cfg.ServerName != "api.c2" || cfg.Timeout != 3*time.Second {
		t.Errorf("AsToken config lost the server, its TLS name or the timeout: %s %q %s", cfg.Host, cfg.ServerName, cfg.Timeout)
	}
	if !wrapped || as.Context != "c2" || as.Kube == nil || as.Dynamic == nil {
		t.Errorf("AsToken: wrapped %v, context %q, clients %v %v", wrapped, as.Context, as.Kube, as.Dynamic)
	}
	if c.Config.BearerToken != "users-token" {
		t.Errorf("AsToken changed the cluster's own config")
	}
}

func TestAsTokenUsesClusterFor(t *testing.T) {
	fake := &Cluster{Context: "c2"}
	var asked string
	f := Factory{ClusterFor: func(ctx string) (*Cluster, error) { asked = ctx; return fake, nil }}
	got, err := f.AsToken(&Cluster{Context: "c2"}, "t")
	if err != nil || got != fake || asked != "c2" {
		t.Fatalf("AsToken with ClusterFor = %v, %v (asked %q), want the fake of c2", got, err, asked)
	}
}

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
