package webhook

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/webhook/config"
)

// Reasons of the Events the reloader records on the ConfigMap.
const (
	ReasonConfigApplied = "ConfigApplied"
	ReasonConfigInvalid = "ConfigInvalid"
)

// Reloader applies the policy ConfigMap whenever it changes, without a
// restart: the policy in force is always what a restart would read (flags
// first, then the ConfigMap, then the defaults). A ConfigMap that does not
// validate is refused as a whole; the last good policy stays in force, and
// the refusal is an Event on the ConfigMap, a log line and the
// config_reloads_total{result="invalid"} metric.
type Reloader struct {
	Kube      kubernetes.Interface
	Namespace string
	Name      string
	// Base is the policy options from flags (and --config-dir); the
	// ConfigMap's keys apply where no flag was given.
	Base *config.Options
	// Apply puts a new policy in force; it is called once with the policy
	// at start and again on every change.
	Apply    func(ctx context.Context, p rules.Policy) error
	Recorder events.EventRecorder // nil: no Events
	Metrics  *ReloadMetrics       // nil: no metrics
	Log      logr.Logger

	mu      sync.Mutex
	current *rules.Policy
	synced  cache.InformerSynced
}

// ReloadMetrics count the reloads by result (applied, unchanged, invalid)
// and say whether the last one was good.
type ReloadMetrics struct {
	Reloads     *prometheus.CounterVec
	LastSuccess prometheus.Gauge
}

// NewReloadMetrics creates the metrics and registers them with reg (nil:
// not registered).
func NewReloadMetrics(reg prometheus.Registerer) *ReloadMetrics {
	m := &ReloadMetrics{
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricsPrefix + "config_reloads_total",
			Help: "Policy ConfigMap changes seen, by result (applied, unchanged, invalid).",
		}, []string{"result"}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricsPrefix + "config_last_reload_successful",
			Help: "1 when the last policy ConfigMap seen was valid and is in force, 0 when it was refused.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Reloads, m.LastSuccess)
	}
	return m
}

// NeedLeaderElection is false: every replica enforces the policy.
func (r *Reloader) NeedLeaderElection() bool { return false }

// Start watches the ConfigMap until ctx ends.
func (r *Reloader) Start(ctx context.Context) error {
	f := informers.NewSharedInformerFactoryWithOptions(r.Kube, 0, informers.WithNamespace(r.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", r.Name).String()
		}))
	inf := f.Core().V1().ConfigMaps().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { r.Update(ctx, o.(*corev1.ConfigMap)) },
		UpdateFunc: func(_, o any) { r.Update(ctx, o.(*corev1.ConfigMap)) },
		DeleteFunc: func(any) { r.Update(ctx, nil) },
	})
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.synced = inf.HasSynced
	r.mu.Unlock()
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil
	}
	r.mu.Lock()
	initial := r.current == nil
	r.mu.Unlock()
	if initial {
		// No ConfigMap: the flags and defaults are the policy.
		r.Update(ctx, nil)
	}
	<-ctx.Done()
	return nil
}

// Synced reports whether the first policy is in force.
func (r *Reloader) Synced() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current != nil
}

// Update applies cm (nil: no ConfigMap) as Start does on a change.
func (r *Reloader) Update(ctx context.Context, cm *corev1.ConfigMap) {
	opts := *r.Base
	var data map[string]string
	if cm != nil {
		data = cm.Data
	}
	opts.Merge(data)
	p, err := opts.Config()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.count("invalid", 0)
		r.Log.Error(err, "policy ConfigMap refused; the last good policy stays in force", "configMap", r.Namespace+"/"+r.Name)
		r.event(cm, corev1.EventTypeWarning, ReasonConfigInvalid, "refused; the last good policy stays in force: %v", err)
		return
	}
	if r.current != nil && reflect.DeepEqual(*r.current, p) {
		r.count("unchanged", 1)
		return
	}
	if err := r.Apply(ctx, p); err != nil {
		r.count("invalid", 0)
		r.Log.Error(err, "applying the policy failed", "configMap", r.Namespace+"/"+r.Name)
		r.event(cm, corev1.EventTypeWarning, ReasonConfigInvalid, "could not be applied: %v", err)
		return
	}
	initial := r.current == nil
	r.current = &p
	r.count("applied", 1)
	r.Log.Info("policy in force", "mode", p.Mode, "suffix", p.Suffix, "vipSpace", p.Space.String(), "gatewayPorts", p.AllowedGatewayPorts, "initial", initial)
	if !initial {
		r.event(cm, corev1.EventTypeNormal, ReasonConfigApplied, "policy in force: suffix %s, VIP space %s, gateway ports %v, mode %s", p.Suffix, p.Space, p.AllowedGatewayPorts, p.Mode)
	}
}

func (r *Reloader) count(result string, ok float64) {
	if r.Metrics == nil {
		return
	}
	r.Metrics.Reloads.WithLabelValues(result).Inc()
	r.Metrics.LastSuccess.Set(ok)
}

func (r *Reloader) event(cm *corev1.ConfigMap, eventtype, reason, format string, a ...any) {
	if r.Recorder == nil || cm == nil {
		return
	}
	r.Recorder.Eventf(cm, nil, eventtype, reason, "ReloadPolicy", "%s", fmt.Sprintf("ConfigMap %s/%s ", cm.Namespace, cm.Name)+fmt.Sprintf(format, a...))
}

// addReloader adds the ConfigMap watch to the manager (nil when
// --config-map is empty): each policy it reads is put in force for the
// handlers, the claims' VIP space, the repair loop's suffix and the webhook
// configurations' matchConditions.
func addReloader(mgr manager.Manager, kube kubernetes.Interface, o *Options, h *Handlers, claims *vip.Claims, repair *vip.Repairer, log logr.Logger) (*Reloader, error) {
	if o.ConfigMap == "" {
		return nil, nil
	}
	r := &Reloader{
		Kube: kube, Namespace: o.Namespace, Name: o.ConfigMap, Base: o.Policy,
		Recorder: mgr.GetEventRecorder(Name), Metrics: NewReloadMetrics(ctrlmetrics.Registry), Log: log,
		Apply: func(ctx context.Context, p rules.Policy) error {
			h.SetPolicy(p)
			claims.SetSpace(p.Space)
			repair.SetSuffix(p.Suffix)
			// The policy is in force either way; a configuration the API
			// server refuses to patch is reported and tried again on the
			// next change or restart.
			if err := SyncConfigurations(ctx, kube, Name, p.Suffix); err != nil {
				log.Error(err, "the webhook configurations still send the previous suffix's objects")
			}
			return nil
		},
	}
	return r, mgr.Add(r)
}
