package plugin

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Factory builds clients for any context of the kubeconfig that the
// standard kubectl flags (--kubeconfig, --context, …) select. Commands that
// span clusters (--from/--to/--contexts) use it to reach each one.
type Factory struct {
	Getter genericclioptions.RESTClientGetter
}

// NewFactory wraps a RESTClientGetter; tests inject their own getter.
func NewFactory(getter genericclioptions.RESTClientGetter) Factory {
	return Factory{Getter: getter}
}

// RawConfig is the merged kubeconfig.
func (f Factory) RawConfig() (clientcmdapi.Config, error) {
	return f.Getter.ToRawKubeConfigLoader().RawConfig()
}

// CurrentContext is the context --context selects, or the kubeconfig's
// current context.
func (f Factory) CurrentContext() (string, error) {
	raw, err := f.RawConfig()
	if err != nil {
		return "", err
	}
	if cf, ok := f.Getter.(*genericclioptions.ConfigFlags); ok && cf.Context != nil && *cf.Context != "" {
		return *cf.Context, nil
	}
	if raw.CurrentContext == "" {
		return "", fmt.Errorf("the kubeconfig has no current context; pass --context")
	}
	return raw.CurrentContext, nil
}

// Contexts lists the kubeconfig's contexts, sorted.
func (f Factory) Contexts() ([]string, error) {
	raw, err := f.RawConfig()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(raw.Contexts))
	for name := range raw.Contexts {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// RESTConfig is the client configuration of a context; "" means the current
// one. An unknown context is an error that lists the known ones.
func (f Factory) RESTConfig(context string) (*rest.Config, error) {
	if context == "" {
		return f.Getter.ToRESTConfig()
	}
	raw, err := f.RawConfig()
	if err != nil {
		return nil, err
	}
	if _, ok := raw.Contexts[context]; !ok {
		known, _ := f.Contexts()
		return nil, fmt.Errorf("context %q is not in the kubeconfig (known: %s); check --kubeconfig and the context name", context, strings.Join(known, ", "))
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(raw, context, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("context %q: %w", context, err)
	}
	return cfg, nil
}

// Cluster is one kubeconfig context and its clients.
type Cluster struct {
	Context string
	Config  *rest.Config
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
}

// Cluster returns clients for a context; "" means the current one.
func (f Factory) Cluster(context string) (*Cluster, error) {
	if context == "" {
		c, err := f.CurrentContext()
		if err != nil {
			return nil, err
		}
		context = c
	}
	cfg, err := f.RESTConfig(context)
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("context %q: %w", context, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("context %q: %w", context, err)
	}
	return &Cluster{Context: context, Config: cfg, Kube: kube, Dynamic: dyn}, nil
}
