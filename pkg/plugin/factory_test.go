package plugin

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
)

const twoClusters = `apiVersion: v1
kind: Config
clusters:
- name: one
  cluster: {server: "https://one.example:6443", certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==}
- name: two
  cluster: {server: "https://two.example:6443"}
users:
- name: u1
  user: {token: t1}
- name: u2
  user: {token: t2}
- name: u3
  user: {token: t3}
contexts:
- name: c1
  context: {cluster: one, user: u1}
- name: c2
  context: {cluster: two, user: u2}
current-context: c1
`

// meshFlags parses args as `kubectl mesh version ARGS` would and returns
// the factory every command gets.
func meshFlags(t *testing.T, args ...string) cli.Factory {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(twoClusters), 0o600); err != nil {
		t.Fatal(err)
	}
	cf := cli.NewConfigFlags()
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}
	root := newCmdMesh(cf, cli.NewFactory(cf), streams)
	if err := root.PersistentFlags().Parse(append([]string{"--kubeconfig", path}, args...)); err != nil {
		t.Fatal(err)
	}
	return cli.NewFactory(cf)
}

// Issue 13, item 3: the kubeconfig flags reach every context a command
// touches (--from, --to, --contexts), not only the current one, and every
// request has a timeout unless --request-timeout=0 says otherwise.
func TestKubeconfigFlagsReachEveryContext(t *testing.T) {
	tests := map[string]struct {
		args  []string
		check func(t *testing.T, context string, cfg *rest.Config)
	}{
		"default request timeout": {
			check: func(t *testing.T, _ string, cfg *rest.Config) {
				if cfg.Timeout != cli.DefaultRequestTimeout {
					t.Errorf("Timeout = %s, want %s", cfg.Timeout, cli.DefaultRequestTimeout)
				}
			},
		},
		"--request-timeout": {
			args: []string{"--request-timeout", "5s"},
			check: func(t *testing.T, _ string, cfg *rest.Config) {
				if cfg.Timeout != 5*time.Second {
					t.Errorf("Timeout = %s, want 5s", cfg.Timeout)
				}
			},
		},
		"--request-timeout=0 turns it off": {
			args: []string{"--request-timeout", "0"},
			check: func(t *testing.T, _ string, cfg *rest.Config) {
				if cfg.Timeout != 0 {
					t.Errorf("Timeout = %s, want none", cfg.Timeout)
				}
			},
		},
		"--as, --as-group, --as-uid": {
			args: []string{"--as", "alice", "--as-group", "devs", "--as-uid", "1234"},
			check: func(t *testing.T, _ string, cfg *rest.Config) {
				if cfg.Impersonate.UserName != "alice" || strings.Join(cfg.Impersonate.Groups, ",") != "devs" || cfg.Impersonate.UID != "1234" {
					t.Errorf("Impersonate = %+v, want alice, devs, 1234", cfg.Impersonate)
				}
			},
		},
		"--token": {
			args: []string{"--token", "override"},
			check: func(t *testing.T, _ string, cfg *rest.Config) {
				if cfg.BearerToken != "override" {
					t.Errorf("BearerToken = %q, want override", cfg.BearerToken)
				}
			},
		},
		"--user": {
			args: []string{"--user", "u3"},
			check: func(t *testing.T, _ string, cfg *rest.Config) {
				if cfg.BearerToken != "t3" {
					t.Errorf("BearerToken = %q, want u3's t3", cfg.BearerToken)
				}
			},
		},
		"--insecure-skip-tls-verify": {
			args: []string{"--insecure-skip-tls-verify"},
			check: func(t *testing.T, _ string, cfg *rest.Config) {
				if !cfg.Insecure || len(cfg.CAData) > 0 {
					t.Errorf("Insecure = %v, CAData %d bytes; want insecure without a CA", cfg.Insecure, len(cfg.CAData))
				}
			},
		},
		"--server with --context applies to that context only": {
			args: []string{"--context", "c2", "--server", "https://bastion.example:443"},
			check: func(t *testing.T, context string, cfg *rest.Config) {
				want := map[string]string{"c1": "https://one.example:6443", "c2": "https://bastion.example:443"}[context]
				if cfg.Host != want {
					t.Errorf("Host = %s, want %s", cfg.Host, want)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := meshFlags(t, tc.args...)
			for _, context := range []string{"c1", "c2"} {
				cfg, err := f.RESTConfig(context)
				if err != nil {
					t.Fatalf("%s: %v", context, err)
				}
				t.Run(context, func(t *testing.T) { tc.check(t, context, cfg) })
			}
		})
	}
}

// --server names one cluster: without --context saying which context it
// is for, a command that reaches another context is refused rather than
// sending that context's requests to the wrong server.
func TestClusterFlagsNeedContextWithSeveralClusters(t *testing.T) {
	for _, flag := range []string{"--server", "--cluster", "--certificate-authority", "--tls-server-name"} {
		t.Run(flag, func(t *testing.T) {
			f := meshFlags(t, flag, "x")
			if err := f.CheckContexts("c1", "c2"); err == nil || !strings.Contains(err.Error(), flag) || !strings.Contains(err.Error(), "--context") {
				t.Fatalf("CheckContexts(c1, c2) with %s = %v; want a refusal naming %s and --context", flag, err, flag)
			}
			if _, err := f.RESTConfig("c2"); err == nil {
				t.Fatalf("RESTConfig(c2) with %s and no --context: no error", flag)
			}
			if err := f.CheckContexts("c1"); err != nil {
				t.Fatalf("CheckContexts(c1), the current context: %v", err)
			}
		})
	}
	f := meshFlags(t, "--context", "c2", "--server", "https://x.example")
	if err := f.CheckContexts("c1", "c2"); err != nil {
		t.Fatalf("--server with --context: %v", err)
	}
	if f := meshFlags(t, "--as", "alice"); f.CheckContexts("c1", "c2") != nil {
		t.Fatal("--as needs no --context")
	}
}
