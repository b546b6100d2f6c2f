package cli

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

// Factory builds the clients of every command, for any context of the
// kubeconfig that the standard kubectl flags (--kubeconfig, --context, …)
// select. Commands that span clusters (--from/--to/--contexts) use it to
// reach each one. It is a value: a command that needs another rate limit
// or timeout takes a copy (WithRateLimit, WithTimeout), so the settings of
// one command never leak into another.
type Factory struct {
	Getter genericclioptions.RESTClientGetter
	// QPS and Burst are the client-side rate limit; 0 keeps the default
	// (50, 100), and the kubeconfig's own values win when set.
	QPS   float32
	Burst int
	// Timeout, when set, bounds every request instead of
	// --request-timeout: status uses it so that a peer that does not answer
	// cannot hang it.
	Timeout time.Duration
	// WrapConfig, when set, adjusts every cluster's client configuration
	// (tests and benchmarks count or redirect requests with it).
	WrapConfig func(*rest.Config)
	// ClusterFor, when set, is what Cluster returns for a context once the
	// kubeconfig has resolved it: unit tests hand out fake clients with it.
	ClusterFor func(context string) (*Cluster, error)
}

// NewFactory wraps a RESTClientGetter; tests inject their own getter.
func NewFactory(getter genericclioptions.RESTClientGetter) Factory {
	return Factory{Getter: getter}
}

// WithRateLimit returns a copy of f whose clients allow qps requests per
// second (burst at once).
func (f Factory) WithRateLimit(qps float32, burst int) Factory {
	f.QPS, f.Burst = qps, burst
	return f
}

// WithTimeout returns a copy of f whose requests each time out after d.
func (f Factory) WithTimeout(d time.Duration) Factory {
	f.Timeout = d
	return f
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

// DefaultRequestTimeout bounds every request of every command unless
// --request-timeout says otherwise (0: no timeout): a cluster that stops
// answering must not hang a command, nor an undo after it.
const DefaultRequestTimeout = 30 * time.Second

// NewConfigFlags are kubectl's flags with kubectl mesh's default request
// timeout.
func NewConfigFlags() *genericclioptions.ConfigFlags {
	cf := genericclioptions.NewConfigFlags(true)
	cf.Timeout = ptr.To(DefaultRequestTimeout.String())
	return cf
}

// clusterFlags name one cluster (its address and how to verify it); they
// apply to the context --context selects (else the current context), as in
// kubectl, never to the other contexts a command reaches.
func clusterFlags(cf *genericclioptions.ConfigFlags) []string {
	var set []string
	for _, f := range []struct {
		name string
		v    *string
	}{{"--server", cf.APIServer}, {"--cluster", cf.ClusterName}, {"--certificate-authority", cf.CAFile}, {"--tls-server-name", cf.TLSServerName}} {
		if f.v != nil && *f.v != "" {
			set = append(set, f.name)
		}
	}
	return set
}

// CheckContexts refuses, before anything is done, a cluster flag (--server,
// --cluster, --certificate-authority, --tls-server-name) that would have
// to apply to several of the contexts a command reaches: they name one
// cluster, and without --context it is not said which context they are
// for.
func (f Factory) CheckContexts(contexts ...string) error {
	cf, ok := f.Getter.(*genericclioptions.ConfigFlags)
	if !ok {
		return nil
	}
	set := clusterFlags(cf)
	if len(set) == 0 || (cf.Context != nil && *cf.Context != "") {
		return nil
	}
	current, err := f.CurrentContext()
	if err != nil {
		return err
	}
	for _, c := range contexts {
		if c != "" && c != current {
			return fmt.Errorf("%s names one cluster and applies to one context, but this command also reaches context %q besides the current context %q; say which context %s is for with --context, or put the server in the kubeconfig (kubectl config set-cluster) and leave %s out",
				strings.Join(set, ", "), c, current, strings.Join(set, ", "), strings.Join(set, ", "))
		}
	}
	return nil
}

// RESTConfig is the client configuration of a context; "" means the current
// one. An unknown context is an error that lists the known ones. The
// kubeconfig flags reach every context: credentials and impersonation
// (--token, --user, --as, --as-group, --as-uid, --client-certificate,
// --client-key, …), --insecure-skip-tls-verify, --request-timeout; the
// cluster flags (see clusterFlags) only the context --context selects.
func (f Factory) RESTConfig(context string) (*rest.Config, error) {
	if context == "" {
		// kubectl's own resolution, with every flag (and in-cluster
		// configuration when there is no kubeconfig).
		return f.Getter.ToRESTConfig()
	}
	cf, flags := f.Getter.(*genericclioptions.ConfigFlags)
	if !flags {
		return f.contextConfig(context, &clientcmd.ConfigOverrides{})
	}
	current, err := f.CurrentContext()
	if err != nil {
		return nil, err
	}
	overrides := credentialOverrides(cf)
	if set := clusterFlags(cf); len(set) > 0 {
		switch {
		case context == current:
			if cf.APIServer != nil {
				overrides.ClusterInfo.Server = *cf.APIServer
			}
			if cf.TLSServerName != nil {
				overrides.ClusterInfo.TLSServerName = *cf.TLSServerName
			}
			if cf.CAFile != nil {
				overrides.ClusterInfo.CertificateAuthority = *cf.CAFile
			}
			if cf.ClusterName != nil {
				overrides.Context.Cluster = *cf.ClusterName
			}
		case cf.Context == nil || *cf.Context == "":
			if err := f.CheckContexts(context); err != nil {
				return nil, err
			}
		}
	}
	return f.contextConfig(context, overrides)
}

// credentialOverrides are the kubeconfig flags that apply to every context:
// who the requests are made as, TLS verification and the request timeout.
func credentialOverrides(cf *genericclioptions.ConfigFlags) *clientcmd.ConfigOverrides {
	o := &clientcmd.ConfigOverrides{}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	if v := str(cf.AuthInfoName); v != "" {
		o.Context.AuthInfo = v
	}
	if v := str(cf.CertFile); v != "" {
		o.AuthInfo.ClientCertificate = v
	}
	if v := str(cf.KeyFile); v != "" {
		o.AuthInfo.ClientKey = v
	}
	if v := str(cf.BearerToken); v != "" {
		o.AuthInfo.Token = v
	}
	o.AuthInfo.Impersonate = str(cf.Impersonate)
	o.AuthInfo.ImpersonateUID = str(cf.ImpersonateUID)
	if cf.ImpersonateGroup != nil {
		o.AuthInfo.ImpersonateGroups = *cf.ImpersonateGroup
	}
	if cf.ImpersonateUserExtra != nil && len(*cf.ImpersonateUserExtra) > 0 {
		o.AuthInfo.ImpersonateUserExtra = map[string][]string{}
		for _, kv := range *cf.ImpersonateUserExtra {
			if k, v, ok := strings.Cut(kv, "="); ok {
				o.AuthInfo.ImpersonateUserExtra[k] = append(o.AuthInfo.ImpersonateUserExtra[k], v)
			}
		}
	}
	o.AuthInfo.Username, o.AuthInfo.Password = str(cf.Username), str(cf.Password)
	if cf.Insecure != nil {
		o.ClusterInfo.InsecureSkipTLSVerify = *cf.Insecure
	}
	if cf.DisableCompression != nil {
		o.ClusterInfo.DisableCompression = *cf.DisableCompression
	}
	o.ClusterInfo.ProxyURL = str(cf.ProxyURL)
	o.Timeout = str(cf.Timeout)
	return o
}

func (f Factory) contextConfig(context string, overrides *clientcmd.ConfigOverrides) (*rest.Config, error) {
	raw, err := f.RawConfig()
	if err != nil {
		return nil, err
	}
	if _, ok := raw.Contexts[context]; !ok {
		known, _ := f.Contexts()
		return nil, fmt.Errorf("context %q is not in the kubeconfig (known: %s); check --kubeconfig and the context name", context, strings.Join(known, ", "))
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(raw, context, overrides, nil).ClientConfig()
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
	if f.ClusterFor != nil {
		return f.ClusterFor(context)
	}
	cfg, err := f.RESTConfig(context)
	if err != nil {
		return nil, err
	}
	return f.clients(context, rest.CopyConfig(cfg))
}

// clients are the typed and dynamic clients of cfg, with the factory's
// rate limit, timeout and hook: the one place a client is made.
func (f Factory) clients(context string, cfg *rest.Config) (*Cluster, error) {
	f.tune(cfg)
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

// Default client-side rate limit: kubectl's 5 QPS would make a run that
// writes a few objects per service and cluster crawl.
const (
	defaultQPS   = 50
	defaultBurst = 100
)

// tune applies the factory's rate limit, timeout and hook to cfg.
func (f Factory) tune(cfg *rest.Config) {
	switch {
	case f.QPS > 0:
		cfg.QPS, cfg.Burst = f.QPS, max(f.Burst, int(f.QPS))
	case cfg.QPS == 0:
		cfg.QPS, cfg.Burst = defaultQPS, defaultBurst
	}
	if f.Timeout > 0 {
		cfg.Timeout = f.Timeout
	}
	if f.WrapConfig != nil {
		f.WrapConfig(cfg)
	}
}

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
	return f.clients(c.Context, cfg)
}

// ClusterFromKubeconfig returns clients for a kubeconfig that is not the
// user's, such as the one a remote secret holds, with the factory's rate
// limit, timeout and hook: status asks a remote secret's server, as the
// secret's token, what that token may do. Context is the kubeconfig's
// current context.
func (f Factory) ClusterFromKubeconfig(kubeconfig []byte) (*Cluster, error) {
	cc, err := clientcmd.NewClientConfigFromBytes(kubeconfig)
	if err != nil {
		return nil, err
	}
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, err
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, err
	}
	return f.clients(raw.CurrentContext, cfg)
}
