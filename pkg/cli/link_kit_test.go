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

// Contains came from link's own writer, where it tells a client dry run
// whether an apply would change anything.
func TestContains(t *testing.T) {
	have := map[string]any{"a": "1", "b": map[string]any{"c": []any{"x", "y"}, "d": int64(2)}}
	tests := map[string]struct {
		want any
		ok   bool
	}{
		"subset":        {map[string]any{"b": map[string]any{"d": int64(2)}}, true},
		"list equal":    {map[string]any{"b": map[string]any{"c": []any{"x", "y"}}}, true},
		"list differs":  {map[string]any{"b": map[string]any{"c": []any{"x"}}}, false},
		"value differs": {map[string]any{"a": "2"}, false},
		"missing key":   {map[string]any{"z": "1"}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Contains(have, tc.want); got != tc.ok {
				t.Fatalf("Contains(%v, %v) = %v", have, tc.want, got)
			}
		})
	}
}
