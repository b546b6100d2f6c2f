package cli

import (
	"fmt"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// AsToken returns clients of c's cluster that authenticate with token and
// nothing else of the kubeconfig (no client certificate, other token or
// impersonation): link asks with them what a new reader token may do. The
// factory's rate limit, timeout and WrapConfig apply; when ClusterFor is set
// (unit tests), it gives the clients, for c's context.
func (f Factory) AsToken(c *Cluster, token string) (*Cluster, error) {
	if f.ClusterFor != nil {
		return f.ClusterFor(c.Context)
	}
	cfg := rest.AnonymousClientConfig(c.Config)
	cfg.BearerToken = token
	f.tune(cfg)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("context %q: %w", c.Context, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("context %q: %w", c.Context, err)
	}
	return &Cluster{Context: c.Context, Config: cfg, Kube: kube, Dynamic: dyn}, nil
}
