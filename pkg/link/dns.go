package link

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/dns"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/meshconfig"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// ErrNoIstioCoreDNS says the cluster has no istiocoredns Service (Istio ≥ 1.8
// removed it; its sidecars answer DNS themselves).
var ErrNoIstioCoreDNS = errors.New("service istio-system/istiocoredns not found")

// IstioCoreDNS is the ClusterIP of istiocoredns.
func IstioCoreDNS(ctx context.Context, c *cli.Cluster) (string, error) {
	svc, err := c.Kube.CoreV1().Services(rules.IstioSystemNamespace).Get(ctx, "istiocoredns", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", fmt.Errorf("%s: %w", c.Context, ErrNoIstioCoreDNS)
	}
	if err != nil {
		return "", fmt.Errorf("%s: read Service istio-system/istiocoredns: %w", c.Context, err)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return "", fmt.Errorf("%s: Service istio-system/istiocoredns has no ClusterIP; it must be a ClusterIP Service", c.Context)
	}
	return svc.Spec.ClusterIP, nil
}

// dns makes the `.global` names resolve in from: with istiocoredns
// (Istio ≤ 1.7) by forwarding the global zone of the cluster DNS to it,
// without it (Istio ≥ 1.8) through Istio's DNS proxy.
func (r *run) dns(ctx context.Context) error {
	ip, err := IstioCoreDNS(ctx, r.from)
	if errors.Is(err, ErrNoIstioCoreDNS) {
		return r.dnsProxy(ctx)
	}
	if err != nil {
		return err
	}
	cm, target, warnings, err := dns.Detect(ctx, r.from.Kube, r.DNSNamespace, r.DNSName)
	if err != nil {
		return fmt.Errorf("%s: %w", r.from.Context, err)
	}
	for _, w := range warnings {
		r.Log.Warnf(r.from.Context, "%s", w)
	}
	ch, err := dns.Apply(cm, target, ip)
	if err != nil {
		return fmt.Errorf("%s: %w", r.from.Context, err)
	}
	if ch == nil {
		r.Log.Line(r.from.Context, OK, "dns", fmt.Sprintf("%s %s forwards global to istiocoredns %s", target.Kind, target, ip))
		return nil
	}
	patched := ch.Patched(cm)
	patched.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}
	r.Log.Object(patched)
	r.record.PendingDNS = ch
	if err := r.savePending(ctx); err != nil {
		return err
	}
	if err := r.updateConfigMap(ctx, patched); err != nil {
		return err
	}
	r.record.DNS, r.record.PendingDNS = dns.Compose(r.record.DNS, ch), nil
	r.Log.Line(r.from.Context, Changed, "dns", fmt.Sprintf("%s %s key %s: global forwarded to istiocoredns %s", target.Kind, target, ch.Key, ip))
	return nil
}

// dnsProxy checks, and with EnableDNSCapture turns on, Istio's DNS
// proxying in from: Istio ≥ 1.8 has no istiocoredns, and its sidecars
// answer `.global` names with the ServiceEntry's VIP only when DNS capture
// is on. The edit is recorded so that unlink reverts exactly it.
func (r *run) dnsProxy(ctx context.Context) error {
	const step = "dns"
	cm, err := meshconfig.Find(ctx, r.from.Kube, r.IstioRevision)
	if err != nil {
		return fmt.Errorf("%s: no istiocoredns (Istio ≥ 1.8), and %w; pass --istio-revision for a revisioned install", r.from.Context, err)
	}
	ref := cm.Namespace + "/" + cm.Name
	on, err := meshconfig.DNSCapture(cm.Data[meshconfig.Key])
	if err != nil {
		return fmt.Errorf("%s: ConfigMap %s: %w", r.from.Context, ref, err)
	}
	if on {
		r.Log.Line(r.from.Context, OK, step, fmt.Sprintf("no istiocoredns; Istio's DNS proxy answers .global names (ConfigMap %s: %s)", ref, meshconfig.DNSCaptureKey))
		return nil
	}
	if !r.EnableDNSCapture {
		r.Log.Line(r.from.Context, Needed, step, "no istiocoredns and Istio's DNS proxying is off, so .global names do not resolve")
		r.Log.Warnf(r.from.Context, "Istio's DNS proxying is off: %s", mesh.DNSCaptureHint(ref))
		return nil
	}
	ch, err := meshconfig.EnableDNSCapture(cm)
	if err != nil {
		return fmt.Errorf("%s: ConfigMap %s: %w", r.from.Context, ref, err)
	}
	patched := ch.Apply(cm)
	patched.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}
	r.Log.Object(patched)
	// Recorded before it is written; its undo is a no-op if it never was.
	r.record.MeshConfig = ch
	if err := r.savePending(ctx); err != nil {
		return err
	}
	if err := r.updateConfigMap(ctx, patched); err != nil {
		return err
	}
	r.Log.Line(r.from.Context, Changed, step, ch.Describe()+"; restart the workloads' proxies (kubectl rollout restart) to pick it up")
	return nil
}

// updateConfigMap writes an edited ConfigMap of from (DNS forwarding or
// the mesh config). It is an update carrying the resourceVersion read, not
// an apply, so that a concurrent edit makes it fail instead of being
// overwritten.
func (r *run) updateConfigMap(ctx context.Context, patched *corev1.ConfigMap) error {
	if err := updateConfigMap(ctx, r.from, r.DryRun, patched); err != nil {
		return fmt.Errorf("%w; run link again", err)
	}
	return nil
}

// updateConfigMap updates a ConfigMap as read and edited, honouring the
// dry run.
func updateConfigMap(ctx context.Context, c *cli.Cluster, dry cli.DryRun, cm *corev1.ConfigMap) error {
	if !dry.Writes() {
		return nil
	}
	if _, err := c.Kube.CoreV1().ConfigMaps(cm.Namespace).Update(ctx, cm, metav1.UpdateOptions{FieldManager: rules.FieldManager, DryRun: dry.Options()}); err != nil {
		return fmt.Errorf("%s: update ConfigMap %s/%s: %w", c.Context, cm.Namespace, cm.Name, err)
	}
	return nil
}
