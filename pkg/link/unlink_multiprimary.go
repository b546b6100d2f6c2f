package link

import (
	"context"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// onlyMultiPrimary undoes what multi-primary added and keeps the rest of
// the link, whose record then says so.
func (r *unlinkRun) onlyMultiPrimary(ctx context.Context) error {
	fc, rec := r.from, r.rec
	if rec.MultiPrimary == nil {
		r.Log.Line(fc.Context, Skipped, "remote secret", fmt.Sprintf("the link to %s was not made with --multi-primary", r.to.Context))
		return nil
	}
	if err := r.multiPrimary(ctx); err != nil {
		r.Log.Line(fc.Context, Skipped, "record", "kept because a step failed")
		return err
	}
	rec.MultiPrimary = nil
	cm, err := rec.ConfigMap()
	if err != nil {
		return err
	}
	r.Log.Object(cm)
	if _, err := r.fromW.Apply(ctx, gvrConfigMap, cm); err != nil {
		return fmt.Errorf("%s: update link record: %w", fc.Context, err)
	}
	r.Log.Line(fc.Context, Changed, "record", fmt.Sprintf("ConfigMap %s/%s: the link stays, without its multi-primary part", rules.MeshNamespace, cm.Name))
	return nil
}

// multiPrimary removes the remote secret, revokes its token and removes,
// when no other link uses them, the peer's reader RBAC that link wrote and
// the network labels it set.
func (r *unlinkRun) multiPrimary(ctx context.Context) error {
	fc, mp, to := r.from, r.rec.MultiPrimary, r.to.Context
	deleted, err := r.fromW.DeleteManaged(ctx, gvrSecret, rules.IstioSystemNamespace, mp.RemoteSecret)
	if err != nil {
		return fmt.Errorf("%s: remote secret: %w", fc.Context, err)
	}
	r.Log.Line(fc.Context, changedIf(deleted), "remote secret", fmt.Sprintf("Secret istio-system/%s deleted", mp.RemoteSecret))
	if r.to.Err != nil {
		return fmt.Errorf("--to: %w; the reader token and RBAC in %s stay until unlink can reach it", r.to.Err, to)
	}
	tc := r.to.Cluster
	tw := cli.Writer{Dynamic: tc.Dynamic, DryRun: r.DryRun}
	if isLegacyReader(mp) {
		if err := removeLegacyReader(ctx, r.Log, tc, tw, mp); err != nil {
			return err
		}
	} else if err := r.unlinkReader(ctx, tc, tw, mp); err != nil {
		return err
	}
	for _, c := range []struct {
		cluster *cli.Cluster
		users   func() ([]string, error)
		legacy  *mesh.LabelChange
	}{
		{tc, func() ([]string, error) { return multiPrimaryUsers(ctx, tc, fc.Context, "") }, mp.Network},
		{fc, func() ([]string, error) { return multiPrimaryUsers(ctx, fc, "", to) }, nil},
	} {
		users, err := c.users()
		if err != nil {
			return fmt.Errorf("%s: %w", c.cluster.Context, err)
		}
		if len(users) > 0 {
			r.Log.Line(c.cluster.Context, Skipped, "network", "network labels kept: multi-primary links "+strings.Join(users, ", ")+" still use the cluster")
			continue
		}
		if err := r.restoreNetworks(ctx, c.cluster, c.legacy); err != nil {
			return err
		}
	}
	return nil
}

// unlinkReader deletes the caller's token binding, which revokes its token,
// and kubectl-mesh's reader when no other caller's token uses it.
func (r *unlinkRun) unlinkReader(ctx context.Context, tc *cli.Cluster, tw cli.Writer, mp *mesh.MultiPrimaryRecord) error {
	deleted, err := tw.DeleteManaged(ctx, gvrSecret, rules.IstioSystemNamespace, mp.TokenBinding)
	if err != nil {
		return fmt.Errorf("%s: %w", tc.Context, err)
	}
	r.Log.Line(tc.Context, changedIf(deleted), "reader token", fmt.Sprintf("Secret istio-system/%s deleted: the token bound to it is revoked", mp.TokenBinding))
	if !mp.ReaderOwned {
		r.Log.Line(tc.Context, Skipped, "reader", fmt.Sprintf("ServiceAccount istio-system/%s is Istio's and stays", mp.Reader))
		return nil
	}
	list, err := tc.Kube.CoreV1().Secrets(rules.IstioSystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: mesh.ReaderLabel + "=" + mp.Reader})
	if err != nil {
		return fmt.Errorf("%s: list the token bindings of reader %s: %w", tc.Context, mp.Reader, err)
	}
	var users []string
	for _, s := range list.Items {
		if s.Name != mp.TokenBinding {
			users = append(users, s.Labels[mesh.CallerLabel])
		}
	}
	if len(users) > 0 {
		r.Log.Line(tc.Context, Skipped, "reader", fmt.Sprintf("ServiceAccount, ClusterRole and ClusterRoleBinding %s kept: the remote secrets of %s use it", mp.Reader, strings.Join(users, ", ")))
		return nil
	}
	for _, x := range []struct {
		what string
		gvr  schema.GroupVersionResource
		ns   string
	}{
		{"ClusterRoleBinding " + mp.Reader, gvrClusterRoleBinding, ""},
		{"ClusterRole " + mp.Reader, gvrClusterRole, ""},
		{"ServiceAccount istio-system/" + mp.Reader, gvrServiceAccount, rules.IstioSystemNamespace},
	} {
		deleted, err := tw.DeleteManaged(ctx, x.gvr, x.ns, mp.Reader)
		if err != nil {
			return fmt.Errorf("%s: %w", tc.Context, err)
		}
		r.Log.Line(tc.Context, changedIf(deleted), "reader", x.what+" deleted: no other link uses it")
	}
	return nil
}

// multiPrimaryUsers names the multi-primary links a cluster is still part
// of, as it knows them itself: callers whose tokens are bound in its
// istio-system, and peers its link records give a remote secret of,
// leaving out the link being removed (its caller, or its peer).
func multiPrimaryUsers(ctx context.Context, c *cli.Cluster, exceptCaller, exceptPeer string) ([]string, error) {
	var users []string
	bindings, err := c.Kube.CoreV1().Secrets(rules.IstioSystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: mesh.CallerLabel + "," + rules.ManagedByLabel + "=" + rules.ManagedByValue})
	if err != nil {
		return nil, fmt.Errorf("list token bindings: %w", err)
	}
	for _, s := range bindings.Items {
		if exceptCaller == "" || s.Name != mesh.TokenBindingName(exceptCaller) {
			users = append(users, s.Labels[mesh.CallerLabel]+" -> "+c.Context)
		}
	}
	records, err := c.Kube.CoreV1().ConfigMaps(rules.MeshNamespace).List(ctx, metav1.ListOptions{LabelSelector: mesh.RecordLabel + "=" + mesh.RecordLink})
	if err != nil {
		return nil, fmt.Errorf("list link records: %w", err)
	}
	for i := range records.Items {
		r, err := mesh.RecordFromConfigMap(&records.Items[i])
		if err == nil && r.MultiPrimary != nil && r.Peer != exceptPeer {
			users = append(users, c.Context+" -> "+r.Peer)
		}
	}
	slices.Sort(users)
	return users, nil
}

// restoreNetworks puts back the network labels kubectl mesh set in a
// cluster (istio-system and gateway Services), as they were before. An
// older link recorded the change of istio-system in its record only
// (legacy).
func (r *unlinkRun) restoreNetworks(ctx context.Context, c *cli.Cluster, legacy *mesh.LabelChange) error {
	ns, err := c.Kube.CoreV1().Namespaces().Get(ctx, rules.IstioSystemNamespace, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("%s: read namespace istio-system: %w", c.Context, err)
	}
	if _, recorded := mesh.NetworkChange(ns.Annotations); !recorded && legacy != nil && ns.Labels[legacy.Key] == legacy.Value {
		if ns.Annotations == nil {
			ns.Annotations = map[string]string{}
		}
		mesh.RecordNetworkChange(ns.Annotations, *legacy)
	}
	if changed, what := mesh.RestoreNetwork(ns.Labels, ns.Annotations); changed {
		if err := updateLabelled(ctx, r.Log, c, r.DryRun, ns); err != nil {
			return fmt.Errorf("%s: restore the network label of namespace istio-system: %w; run unlink again", c.Context, err)
		}
		r.Log.Line(c.Context, Changed, "network", "namespace istio-system: "+what)
	}
	svcs, err := c.Kube.CoreV1().Services(rules.IstioSystemNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("%s: list Services of istio-system: %w", c.Context, err)
	}
	for i := range svcs.Items {
		s := &svcs.Items[i]
		changed, what := mesh.RestoreNetwork(s.Labels, s.Annotations)
		if !changed {
			continue
		}
		if err := updateLabelled(ctx, r.Log, c, r.DryRun, s); err != nil {
			return fmt.Errorf("%s: restore the network label of Service %s/%s: %w; run unlink again", c.Context, s.Namespace, s.Name, err)
		}
		r.Log.Line(c.Context, Changed, "network", fmt.Sprintf("Service %s/%s: %s", s.Namespace, s.Name, what))
	}
	return nil
}
