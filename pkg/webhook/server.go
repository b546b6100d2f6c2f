package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook/config"
)

// Names of the objects mesh-webhook runs as and manages; deploy/webhook
// creates them with these names.
const (
	Name              = "mesh-webhook"
	LeaderElectionID  = "mesh-webhook-repair"
	ServingSecretName = "mesh-webhook-tls"
)

// TLS modes: files serves the certificate mounted in --cert-dir (cert-manager
// or any other issuer, reloaded when the files change); self-managed makes
// and rotates its own CA and serving certificate and patches caBundle.
const (
	TLSFiles       = "files"
	TLSSelfManaged = "self-managed"
)

// Options are the flags of the mesh-webhook command.
type Options struct {
	Policy *config.Options

	Kubeconfig      string
	Namespace       string
	Host            string
	Port            int
	CertDir         string
	TLSMode         string
	ServiceName     string
	CertValidity    time.Duration
	TLSExtraSANs    []string
	TLSInterval     time.Duration
	MetricsAddr     string
	MetricsSecure   bool
	ProbeAddr       string
	LeaderElect     bool
	RepairInterval  time.Duration
	RepairGrace     time.Duration
	ShutdownTimeout time.Duration
	LogLevel        int
	KubeAPIQPS      float32
	KubeAPIBurst    int
	Deadline        time.Duration
	ConfigMap       string
}

// NewOptions returns the defaults of a Deployment in mesh-system.
func NewOptions() *Options {
	return &Options{
		Policy:          config.NewOptions(),
		Namespace:       rules.MeshNamespace,
		Port:            9443,
		CertDir:         "/tmp/mesh-webhook/serving-certs",
		TLSMode:         TLSFiles,
		ServiceName:     Name,
		CertValidity:    365 * 24 * time.Hour,
		MetricsAddr:     ":8443",
		MetricsSecure:   true,
		ProbeAddr:       ":8081",
		LeaderElect:     true,
		RepairInterval:  30 * time.Second,
		RepairGrace:     60 * time.Second,
		ShutdownTimeout: 15 * time.Second,
		// Every admission costs one to three claim calls; a burst of
		// creates must not queue behind the client's rate limiter past the
		// webhook timeout.
		KubeAPIQPS:   500,
		KubeAPIBurst: 1000,
		Deadline:     DefaultDeadline,
		ConfigMap:    config.ConfigMapName,
	}
}

// AddFlags registers every flag on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.Policy.AddFlags(fs)
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig to reach the API server (default: in-cluster, then $KUBECONFIG)")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "namespace mesh-webhook runs in (leader election lease, self-managed TLS secret)")
	fs.StringVar(&o.Host, "bind-host", o.Host, "address the webhook server listens on (default all)")
	fs.IntVar(&o.Port, "port", o.Port, "port of the webhook server")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "directory holding tls.crt and tls.key; reloaded when the files change")
	fs.StringVar(&o.TLSMode, "tls-mode", o.TLSMode, "files: serve the certificate in --cert-dir (e.g. from cert-manager); self-managed: create and rotate a CA and serving certificate and patch caBundle")
	fs.StringVar(&o.ServiceName, "service-name", o.ServiceName, "Service in front of the webhook, named in the self-managed serving certificate")
	fs.DurationVar(&o.CertValidity, "cert-validity", o.CertValidity, "self-managed: validity of the serving certificate (rotated after two thirds)")
	fs.StringSliceVar(&o.TLSExtraSANs, "tls-san", o.TLSExtraSANs, "self-managed: further DNS names or IPs of the serving certificate, for webhook configurations that call a URL")
	fs.DurationVar(&o.TLSInterval, "tls-check-interval", o.TLSInterval, "self-managed: how often to check the certificate and caBundle (default a tenth of --cert-validity, at most 1h)")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, "address of the Prometheus metrics endpoint (0 disables it)")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", o.MetricsSecure, "serve metrics over HTTPS to clients the API server authenticates (TokenReview) and authorizes for GET /metrics (SubjectAccessReview); false serves plain HTTP, for a loopback address only")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr, "address of /healthz and /readyz")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "elect one replica to run the VIP claim repair loop")
	fs.DurationVar(&o.RepairInterval, "repair-interval", o.RepairInterval, "how often the leader reconciles VIP claims with ServiceEntries")
	fs.DurationVar(&o.RepairGrace, "repair-grace", o.RepairGrace, "how long a claim must be seen orphaned before it is deleted")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", o.ShutdownTimeout, "how long in-flight admissions may take to finish on SIGTERM")
	fs.IntVar(&o.LogLevel, "v", o.LogLevel, "log verbosity")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "queries per second to the API server")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "burst of queries to the API server")
	fs.DurationVar(&o.Deadline, "admission-deadline", o.Deadline, "how long one admission may work; keep it below the webhook configurations' timeoutSeconds (5s)")
	fs.StringVar(&o.ConfigMap, "config-map", o.ConfigMap, "ConfigMap in --namespace whose keys set the policy (as --"+config.FlagConfigDir+"), watched and applied without a restart; explicit flags win; empty: do not watch")
}

// Complete reads the mounted policy ConfigMap.
func (o *Options) Complete() error { return o.Policy.Complete() }

// Validate checks the flags; errors name the flag.
func (o *Options) Validate() error {
	var errs []error
	if _, err := o.Policy.Config(); err != nil {
		errs = append(errs, err)
	}
	if o.Port < 1 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("--port %d is not a port number in 1-65535", o.Port))
	}
	switch o.TLSMode {
	case TLSFiles, TLSSelfManaged:
	default:
		errs = append(errs, fmt.Errorf("--tls-mode %q is not supported; use %s or %s", o.TLSMode, TLSFiles, TLSSelfManaged))
	}
	if o.CertDir == "" {
		errs = append(errs, errors.New("--cert-dir is empty; give the directory of tls.crt and tls.key"))
	}
	if o.Namespace == "" {
		errs = append(errs, errors.New("--namespace is empty; use the namespace mesh-webhook runs in, e.g. "+rules.MeshNamespace))
	}
	if o.Deadline <= 0 || o.Deadline > 30*time.Second {
		errs = append(errs, fmt.Errorf("--admission-deadline %s must be positive and at most 30s (the longest webhook timeout); use less than the webhook configurations' timeoutSeconds", o.Deadline))
	}
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst <= 0 {
		errs = append(errs, errors.New("--kube-api-qps and --kube-api-burst must be positive"))
	}
	if o.RepairInterval <= 0 || o.RepairGrace < 0 || o.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("--repair-interval and --shutdown-timeout must be positive and --repair-grace not negative"))
	}
	if o.TLSMode == TLSSelfManaged && o.CertValidity < time.Hour {
		errs = append(errs, fmt.Errorf("--cert-validity %s is too short; use at least 1h", o.CertValidity))
	}
	return errors.Join(errs...)
}

func (o *Options) restConfig() (*rest.Config, error) {
	if o.Kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	}
	if cfg, err := rest.InClusterConfig(); err == nil {
		return cfg, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("no API server to talk to: not in a cluster and no usable kubeconfig (%w); set --kubeconfig", err)
	}
	return cfg, nil
}

// Run serves the webhooks until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, o *Options, log logr.Logger) error {
	cfg, err := o.Policy.Config()
	if err != nil {
		return err
	}
	restCfg, err := o.restConfig()
	if err != nil {
		return err
	}
	restCfg.QPS, restCfg.Burst = o.KubeAPIQPS, o.KubeAPIBurst
	restCfg.UserAgent = Name
	ctrl.SetLogger(log)
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	selfTLS, err := o.servingTLS(ctx, kube, log)
	if err != nil {
		return err
	}
	mgr, err := o.newManager(restCfg)
	if err != nil {
		return err
	}
	if selfTLS != nil {
		if err := mgr.Add(selfTLS); err != nil {
			return err
		}
	}
	ready, err := addAdmission(mgr, restCfg, kube, o, cfg, log)
	if err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("caches", ready); err != nil {
		return err
	}
	log.Info("starting", "mode", cfg.Mode, "suffix", cfg.Suffix, "vipSpace", cfg.Space.String(), "gatewayPorts", cfg.AllowedGatewayPorts, "tls", o.TLSMode)
	return mgr.Start(ctx)
}

// servingTLS makes sure the serving certificate is there before the server
// starts: with --tls-mode self-managed it creates (and later rotates) it,
// returned as a runnable; otherwise --cert-dir must exist.
func (o *Options) servingTLS(ctx context.Context, kube kubernetes.Interface, log logr.Logger) (*SelfManagedTLS, error) {
	if o.TLSMode != TLSSelfManaged {
		if _, err := os.Stat(o.CertDir); err != nil {
			return nil, fmt.Errorf("--cert-dir: %w; mount the serving certificate there or use --tls-mode %s", err, TLSSelfManaged)
		}
		return nil, nil
	}
	selfTLS := &SelfManagedTLS{
		Kube: kube, Namespace: o.Namespace, SecretName: ServingSecretName, ServiceName: o.ServiceName,
		CertDir: o.CertDir, Validity: o.CertValidity, WebhookConfigName: Name, Log: log.WithName("tls"),
		ExtraSANs: o.TLSExtraSANs, Interval: o.TLSInterval,
	}
	return selfTLS, selfTLS.Ensure(ctx)
}

func (o *Options) newManager(restCfg *rest.Config) (manager.Manager, error) {
	shutdown := o.ShutdownTimeout
	mgr, err := ctrl.NewManager(restCfg, manager.Options{
		Metrics:                       o.metricsServerOptions(),
		HealthProbeBindAddress:        o.ProbeAddr,
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       o.Namespace,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       &shutdown,
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: o.Host, Port: o.Port, CertDir: o.CertDir,
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	return mgr, nil
}

// addAdmission wires the handlers and what they read (the claim cache, the
// index, the policy reloader) and the repair loop into mgr; ready reports
// whether every cache they need has synced.
func addAdmission(mgr manager.Manager, restCfg *rest.Config, kube kubernetes.Interface, o *Options, cfg rules.Policy, log logr.Logger) (ready healthz.Checker, err error) {
	dyn, err := dynamic.NewForConfig(restCfg)
	if err != nil {
		return nil, err
	}
	meta, err := metadata.NewForConfig(restCfg)
	if err != nil {
		return nil, err
	}
	cache := vip.NewMetadataCache(meta)
	claims := vip.NewClaims(dyn, cfg.Space, vip.WithManagedBy(vip.ManagedByWebhook), vip.WithCache(cache), vip.WithRepairGrace(o.RepairGrace))
	index := NewObjectIndex(dyn)
	for _, r := range []manager.Runnable{cache, index} {
		if err := mgr.Add(r); err != nil {
			return nil, err
		}
	}
	h := &Handlers{Config: cfg, Claims: claims, Index: index, Metrics: NewMetrics(ctrlmetrics.Registry), Log: log.WithName("admission"), Deadline: o.Deadline}
	srv := mgr.GetWebhookServer()
	srv.Register(MutatePath, &admission.Webhook{Handler: h.Mutator()})
	srv.Register(ValidatePath, &admission.Webhook{Handler: h.Validator()})
	srv.Register(MutateDestinationRules, &admission.Webhook{Handler: h.DestinationRuleMutator()})
	srv.Register(ValidateDestinationRule, &admission.Webhook{Handler: h.DestinationRuleValidator()})
	repair, err := addRepair(mgr, dyn, claims, o, log.WithName("repair"))
	if err != nil {
		return nil, err
	}
	reloader, err := addReloader(mgr, kube, o, h, claims, repair, log.WithName("config"))
	if err != nil {
		return nil, err
	}
	return func(*http.Request) error {
		switch {
		case !cache.HasSynced():
			return errors.New("VIPClaim cache not synced yet")
		case !index.Synced():
			return errors.New("ServiceEntry and DestinationRule index not synced yet")
		case reloader != nil && !reloader.Synced():
			return errors.New("policy ConfigMap not read yet")
		}
		return nil
	}, nil
}
