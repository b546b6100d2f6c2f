package plugin

import (
	"context"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/link"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
)

// What status still calls by its old names; pkg/link owns them now.

func istioCoreDNS(ctx context.Context, c *cli.Cluster) (string, error) {
	return link.IstioCoreDNS(ctx, c)
}

func sharedRoot(a, b []string) string { return link.SharedRoot(a, b) }

func dnsCaptureHint(cm string) string { return link.DNSCaptureHint(cm) }

func istiodFacts(ctx context.Context, c *cli.Cluster) (mesh.IstiodFacts, bool, error) {
	return link.IstiodFacts(ctx, c)
}

func readerAccess(ctx context.Context, cfg *rest.Config) (link.Access, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return link.Access{}, err
	}
	return link.ReaderAccess(ctx, kube)
}

// clusterWithTimeout gives a cluster's clients a request timeout, so that
// a peer that does not answer cannot hang status.
func clusterWithTimeout(c *cli.Cluster, timeout time.Duration) (*cli.Cluster, error) {
	cfg := rest.CopyConfig(c.Config)
	cfg.Timeout = timeout
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &cli.Cluster{Context: c.Context, Config: cfg, Kube: kube, Dynamic: dyn}, nil
}
