package link

import (
	"context"
	"errors"
	"fmt"
	"maps"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/meshconfig"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// Unlinker undoes links, one direction per Unlink, from their records.
type Unlinker struct {
	DryRun cli.DryRun
	// MultiPrimaryOnly undoes only what multi-primary added and keeps the
	// rest of the link.
	MultiPrimaryOnly bool
	Log              *StepLog
}

// Peer is the called cluster of a link as unlink reaches it: when its
// context is gone from the kubeconfig (Err), unlink still undoes what it
// can in the caller, and says what stays in the peer.
type Peer struct {
	Context string
	Cluster *cli.Cluster
	Err     error
}

// unlinkRun is one direction of an unlink.
type unlinkRun struct {
	*Unlinker
	from  *cli.Cluster
	fromW cli.Writer
	to    Peer
	rec   *mesh.Record
}

// Unlink removes what the link from from to to changed, as its record
// says. The record is deleted last, and kept when a step failed, so that
// unlink can run again after a fix.
func (u *Unlinker) Unlink(ctx context.Context, from *cli.Cluster, to Peer) error {
	rec, err := ReadRecord(ctx, from, to.Context)
	if err != nil {
		return err
	}
	if rec == nil {
		u.Log.Line(from.Context, Skipped, "record", fmt.Sprintf("no link record %s/%s: %s is not linked to %s", rules.MeshNamespace, mesh.RecordName(to.Context), from.Context, to.Context))
		return nil
	}
	// A link that failed or was interrupted may have stopped before or
	// after its DNS write; the ConfigMap tells which edit to revert.
	if err := SettleDNS(ctx, from, rec); err != nil {
		return err
	}
	r := &unlinkRun{Unlinker: u, from: from, fromW: cli.Writer{Dynamic: from.Dynamic, DryRun: u.DryRun}, to: to, rec: rec}
	if u.MultiPrimaryOnly {
		return r.onlyMultiPrimary(ctx)
	}
	var errs []error
	for _, step := range []func(context.Context) error{r.dns, r.meshConfig, r.globalGateways} {
		if err := step(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if rec.MultiPrimary != nil {
		if err := r.multiPrimary(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if len(rec.PeerGatewayCreated) > 0 {
		u.Log.Line(to.Context, Skipped, "gateway", fmt.Sprintf("Gateway istio-system/%v kept: other clusters may call through it; delete it by hand when no cluster links to %s", rec.PeerGatewayCreated, to.Context))
	}
	if len(errs) > 0 {
		// Keep the record so that unlink can be run again after a fix.
		u.Log.Line(from.Context, Skipped, "record", "kept because a step failed")
		return errors.Join(errs...)
	}
	deleted, err := r.fromW.DeleteManaged(ctx, gvrConfigMap, rules.MeshNamespace, mesh.RecordName(to.Context))
	if err != nil {
		return fmt.Errorf("%s: delete link record: %w", from.Context, err)
	}
	u.Log.Line(from.Context, changedIf(deleted), "record", fmt.Sprintf("ConfigMap %s/%s deleted", rules.MeshNamespace, mesh.RecordName(to.Context)))
	return nil
}

// dns reverts the DNS change, unless another link of the cluster still
// needs the forwarding: then that link's record takes the change over, so
// that the last unlink restores the original.
func (r *unlinkRun) dns(ctx context.Context) error {
	fc, rec := r.from, r.rec
	if rec.DNS == nil {
		if rec.MeshConfig == nil {
			r.Log.Line(fc.Context, OK, "dns", "link did not change DNS")
		}
		return nil
	}
	if kept, err := r.handOver(ctx, "global forwarding", func(other *mesh.Record) { other.DNS = rec.DNS }); kept || err != nil {
		return err
	}
	t := rec.DNS.Target
	cm, err := fc.Kube.CoreV1().ConfigMaps(t.Namespace).Get(ctx, t.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		r.Log.Line(fc.Context, Skipped, "dns", fmt.Sprintf("ConfigMap %s is gone", t))
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: read ConfigMap %s: %w", fc.Context, t, err)
	}
	reverted, err := rec.DNS.Revert(cm)
	if err != nil {
		return fmt.Errorf("%s: %w", fc.Context, err)
	}
	if maps.Equal(reverted.Data, cm.Data) {
		r.Log.Line(fc.Context, OK, "dns", fmt.Sprintf("%s %s has no global forwarding of kubectl mesh", t.Kind, t))
		return nil
	}
	reverted.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}
	r.Log.Object(reverted)
	if err := updateConfigMap(ctx, fc, r.DryRun, reverted); err != nil {
		return fmt.Errorf("%w; run unlink again", err)
	}
	r.Log.Line(fc.Context, Changed, "dns", fmt.Sprintf("%s %s key %s restored", t.Kind, t, rec.DNS.Key))
	return nil
}

// handOver gives a change of the record to another link record of the
// same cluster, when there is one: that link still needs the change, and
// the last unlink reverts it. kept says whether it was handed over.
func (r *unlinkRun) handOver(ctx context.Context, what string, take func(*mesh.Record)) (kept bool, err error) {
	fc := r.from
	others, err := fc.Kube.CoreV1().ConfigMaps(rules.MeshNamespace).List(ctx, metav1.ListOptions{LabelSelector: mesh.RecordLabel + "=" + mesh.RecordLink})
	if err != nil {
		return false, fmt.Errorf("%s: list link records: %w", fc.Context, err)
	}
	for i := range others.Items {
		other, err := mesh.RecordFromConfigMap(&others.Items[i])
		if err != nil || other.Peer == r.rec.Peer {
			continue
		}
		take(&other)
		next, err := other.ConfigMap()
		if err != nil {
			return false, err
		}
		r.Log.Object(next)
		if _, err := r.fromW.Apply(ctx, gvrConfigMap, next); err != nil {
			return false, fmt.Errorf("%s: hand the %s change to the link record of %s: %w", fc.Context, what, other.Peer, err)
		}
		r.Log.Line(fc.Context, Skipped, "dns", fmt.Sprintf("%s kept: the link to %s still needs it (its record now owns the change)", what, other.Peer))
		return true, nil
	}
	return false, nil
}

// meshConfig turns Istio's DNS proxying back as it was before
// --enable-dns-capture, unless another link of the cluster still needs it.
func (r *unlinkRun) meshConfig(ctx context.Context) error {
	fc, ch := r.from, r.rec.MeshConfig
	if ch == nil {
		return nil
	}
	if kept, err := r.handOver(ctx, "DNS proxying", func(other *mesh.Record) { other.MeshConfig = ch }); kept || err != nil {
		return err
	}
	ref := ch.Namespace + "/" + ch.Name
	cm, err := fc.Kube.CoreV1().ConfigMaps(ch.Namespace).Get(ctx, ch.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		r.Log.Line(fc.Context, Skipped, "dns", fmt.Sprintf("ConfigMap %s is gone", ref))
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: read ConfigMap %s: %w", fc.Context, ref, err)
	}
	reverted, changed, err := meshconfig.Revert(cm, *ch)
	if err != nil {
		return fmt.Errorf("%s: %w", fc.Context, err)
	}
	if !changed {
		r.Log.Line(fc.Context, OK, "dns", fmt.Sprintf("ConfigMap %s: %s no longer set by kubectl mesh", ref, meshconfig.DNSCaptureKey))
		return nil
	}
	reverted.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}
	r.Log.Object(reverted)
	if err := updateConfigMap(ctx, fc, r.DryRun, reverted); err != nil {
		return fmt.Errorf("%w; run unlink again", err)
	}
	r.Log.Line(fc.Context, Changed, "dns", fmt.Sprintf("ConfigMap %s key %s: DNS proxying setting restored; proxies pick it up when they restart", ref, ch.Key))
	return nil
}

// globalGateways removes, in the peer, the *.global Gateways an older
// link wrote: they route nothing on Istio ≥ 1.14. The *.local Gateway
// stays: other clusters may call through it.
func (r *unlinkRun) globalGateways(ctx context.Context) error {
	to := r.to.Context
	if r.to.Err != nil {
		r.Log.Line(to, Skipped, "gateway", fmt.Sprintf("--to: %v; *.global Gateways of an older link there stay", r.to.Err))
		return nil
	}
	list, err := r.to.Cluster.Dynamic.Resource(rules.GatewayGVR).List(ctx, metav1.ListOptions{LabelSelector: rules.ManagedByLabel + "=" + rules.ManagedByValue})
	if err != nil {
		return fmt.Errorf("%s: list Gateways: %w", to, err)
	}
	tw := cli.Writer{Dynamic: r.to.Cluster.Dynamic, DryRun: r.DryRun}
	for i := range list.Items {
		gw := &list.Items[i]
		if !mesh.IsGlobalPassthrough(gw) {
			continue
		}
		deleted, err := tw.DeleteManaged(ctx, rules.GatewayGVR, gw.GetNamespace(), gw.GetName())
		if err != nil {
			return fmt.Errorf("%s: %w", to, err)
		}
		r.Log.Line(to, changedIf(deleted), "gateway", fmt.Sprintf("Gateway %s/%s (%s, of an older link) deleted: it routes nothing on Istio ≥ 1.14", gw.GetNamespace(), gw.GetName(), mesh.GlobalHosts))
	}
	return nil
}
