package webhook

import (
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

// addRepair adds pkg/vip's repair loop to the manager; it runs on the
// elected leader only.
// It shares claims (and so their VIP space, which a policy reload changes).
func addRepair(mgr manager.Manager, dyn dynamic.Interface, claims *vip.Claims, o *Options, log logr.Logger) (*vip.Repairer, error) {
	cfg, err := o.Policy.Config()
	if err != nil {
		return nil, err
	}
	r, err := vip.NewRepairer(vip.RepairerOptions{
		Client:   dyn,
		Claims:   claims,
		Recorder: eventRecorder{mgr.GetEventRecorder(Name)},
		Registry: ctrlmetrics.Registry,
		Suffix:   cfg.Suffix,
		Interval: o.RepairInterval,
		Grace:    o.RepairGrace,
		Log:      log,
	})
	if err != nil {
		return nil, err
	}
	return r, mgr.Add(r)
}

// eventRecorder reports on the events.k8s.io API through the recorder the
// manager provides.
type eventRecorder struct{ r events.EventRecorder }

func (e eventRecorder) Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	e.r.Eventf(obj, nil, eventtype, reason, "RepairVIPClaims", messageFmt, args...)
}
