package plugin

import (
	"context"
	"fmt"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Dry-run strategies, as kubectl spells them.
const (
	DryRunNone   = "none"
	DryRunClient = "client"
	DryRunServer = "server"
)

// dryRunSuffix is what the table adds to an action under --dry-run.
func dryRunSuffix(mode string) string {
	switch mode {
	case DryRunClient:
		return " (dry run)"
	case DryRunServer:
		return " (server dry run)"
	}
	return ""
}

// parsedDryRun is the strategy of a --dry-run value already validated.
func parsedDryRun(s string) cli.DryRun {
	d, _ := cli.ParseDryRun(s)
	return d
}

func validateDryRun(s string) error {
	switch s {
	case DryRunNone, DryRunClient, DryRunServer:
		return nil
	}
	return fmt.Errorf("--dry-run %q is not supported; use none, client or server", s)
}

// listByName lists a kind in a namespace ("" = all) into a map keyed by
// namespace/name: one request for all the services of a run.
func listByName(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns string) (map[string]*unstructured.Unstructured, error) {
	l, err := dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make(map[string]*unstructured.Unstructured, len(l.Items))
	for i := range l.Items {
		out[l.Items[i].GetNamespace()+"/"+l.Items[i].GetName()] = &l.Items[i]
	}
	return out, nil
}

// restConfigFor returns the client configuration of a kubeconfig context
// for the export commands: a higher client-side rate limit than kubectl's
// default, since one run writes a few objects per service and cluster, and
// an optional transport wrapper (request counting in benchmarks).
func restConfigFor(f cli.Factory, context string, wrap func(rest.Config) rest.Config) (string, *rest.Config, error) {
	if context == "" {
		c, err := f.CurrentContext()
		if err != nil {
			return "", nil, err
		}
		context = c
	}
	cfg, err := f.RESTConfig(context)
	if err != nil {
		return context, nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 500, 1000
	if wrap != nil {
		c := wrap(*cfg)
		cfg = &c
	}
	return context, cfg, nil
}
