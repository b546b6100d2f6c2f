package plugin

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/meshconfig"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// dnsCaptureHint says how to turn Istio's DNS proxying on by hand.
func dnsCaptureHint(cm string) string {
	return fmt.Sprintf(`set %s: "true" in ConfigMap %s key %s (or per pod: annotation proxy.istio.io/config: '{"proxyMetadata":{"%s":"true"}}'), or run link with --enable-dns-capture; proxies pick it up when they restart`,
		meshconfig.DNSCapturePath, cm, meshconfig.Key, meshconfig.DNSCaptureKey)
}

// dnsProxy checks, and with --enable-dns-capture turns on, Istio's DNS
// proxying in --from: Istio ≥ 1.8 has no istiocoredns, and its sidecars
// answer `.global` names with the ServiceEntry's VIP only when DNS capture
// is on. The edit is recorded so that unlink reverts exactly it.
func (r *linkRun) dnsProxy(ctx context.Context) error {
	const step = "dns"
	cm, err := meshconfig.Find(ctx, r.from.Kube, r.o.IstioRevision)
	if err != nil {
		return fmt.Errorf("%s: no istiocoredns (Istio ≥ 1.8), and %w; pass --istio-revision for a revisioned install", r.from.Context, err)
	}
	ref := cm.Namespace + "/" + cm.Name
	on, err := meshconfig.DNSCapture(cm.Data[meshconfig.Key])
	if err != nil {
		return fmt.Errorf("%s: ConfigMap %s: %w", r.from.Context, ref, err)
	}
	if on {
		r.log.line(r.from.Context, stepOK, step, fmt.Sprintf("no istiocoredns; Istio's DNS proxy answers .global names (ConfigMap %s: %s)", ref, meshconfig.DNSCaptureKey))
		return nil
	}
	if !r.o.EnableDNSCapture {
		r.log.line(r.from.Context, stepNeeded, step, "no istiocoredns and Istio's DNS proxying is off, so .global names do not resolve")
		fmt.Fprintf(r.o.ErrOut, "Warning: %s: Istio's DNS proxying is off: %s\n", r.from.Context, dnsCaptureHint(ref))
		return nil
	}
	ch, err := meshconfig.EnableDNSCapture(cm)
	if err != nil {
		return fmt.Errorf("%s: ConfigMap %s: %w", r.from.Context, ref, err)
	}
	patched := ch.Apply(cm)
	patched.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}
	r.log.object(patched)
	// Recorded before it is written; its undo is a no-op if it never was.
	r.record.MeshConfig = ch
	if err := r.savePending(ctx); err != nil {
		return err
	}
	if err := r.updateConfigMap(ctx, patched); err != nil {
		return err
	}
	r.log.line(r.from.Context, stepChanged, step, ch.Describe()+"; restart the workloads' proxies (kubectl rollout restart) to pick it up")
	return nil
}

// updateConfigMap writes an edited ConfigMap of --from (DNS forwarding or
// the mesh config) under kubectl mesh's field manager, honouring
// --dry-run; an update carries the resourceVersion read, so a concurrent
// edit makes it fail instead of being overwritten.
func (r *linkRun) updateConfigMap(ctx context.Context, patched *corev1.ConfigMap) error {
	if !r.fromA.writes() {
		return nil
	}
	if _, err := r.from.Kube.CoreV1().ConfigMaps(patched.Namespace).Update(ctx, patched, metav1.UpdateOptions{FieldManager: rules.FieldManager, DryRun: r.fromA.dryRunOpt()}); err != nil {
		return fmt.Errorf("%s: update ConfigMap %s/%s: %w; run link again", r.from.Context, patched.Namespace, patched.Name, err)
	}
	return nil
}
