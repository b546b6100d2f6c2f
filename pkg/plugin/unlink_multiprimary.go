package plugin

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// unlinkOnlyMultiPrimary undoes what --multi-primary added and keeps the
// rest of the link, whose record then says so.
func (o *UnlinkOptions) unlinkOnlyMultiPrimary(ctx context.Context, log *stepLog, fc *cli.Cluster, fa applier, to string, rec *mesh.Record) error {
	if rec.MultiPrimary == nil {
		log.line(fc.Context, stepSkipped, "remote secret", fmt.Sprintf("the link to %s was not made with --multi-primary", to))
		return nil
	}
	if err := o.unlinkMultiPrimary(ctx, log, fc, fa, to, rec); err != nil {
		log.line(fc.Context, stepSkipped, "record", "kept because a step failed")
		return err
	}
	rec.MultiPrimary = nil
	cm, err := rec.ConfigMap()
	if err != nil {
		return err
	}
	log.object(cm)
	if _, err := fa.apply(ctx, gvrConfigMap, cm); err != nil {
		return fmt.Errorf("%s: update link record: %w", fc.Context, err)
	}
	log.line(fc.Context, stepChanged, "record", fmt.Sprintf("ConfigMap %s/%s: the link stays, without its multi-primary part", rules.MeshNamespace, cm.Name))
	return nil
}

// unlinkMultiPrimary removes the remote secret, revokes its token and
// removes, when no other link uses them, the peer's reader RBAC that link
// wrote and the network labels it set.
func (o *UnlinkOptions) unlinkMultiPrimary(ctx context.Context, log *stepLog, fc *cli.Cluster, fa applier, to string, rec *mesh.Record) error {
	mp := rec.MultiPrimary
	deleted, err := fa.remove(ctx, gvrSecret, rules.IstioSystemNamespace, mp.RemoteSecret)
	if err != nil {
		return fmt.Errorf("%s: remote secret: %w", fc.Context, err)
	}
	log.line(fc.Context, result(deleted), "remote secret", fmt.Sprintf("Secret istio-system/%s deleted", mp.RemoteSecret))
	tc, err := o.factory.Cluster(to)
	if err != nil {
		return fmt.Errorf("--to: %w; the reader token and RBAC in %s stay until unlink can reach it", err, to)
	}
	ta := applier{dyn: tc.Dynamic, dryRun: o.DryRun}
	if isLegacyReader(mp) {
		if err := removeLegacyReader(ctx, log, tc, ta, mp); err != nil {
			return err
		}
	} else if err := o.unlinkReader(ctx, log, tc, ta, fc.Context, mp); err != nil {
		return err
	}
	for _, c := range []struct {
		cluster *cli.Cluster
		a       applier
		users   func() ([]string, error)
	}{
		{tc, ta, func() ([]string, error) { return multiPrimaryUsers(ctx, tc, fc.Context, "") }},
		{fc, fa, func() ([]string, error) { return multiPrimaryUsers(ctx, fc, "", to) }},
	} {
		users, err := c.users()
		if err != nil {
			return fmt.Errorf("%s: %w", c.cluster.Context, err)
		}
		if len(users) > 0 {
			log.line(c.cluster.Context, stepSkipped, "network", "network labels kept: multi-primary links "+strings.Join(users, ", ")+" still use the cluster")
			continue
		}
		if err := o.restoreNetworks(ctx, log, c.cluster, c.a, legacyNetwork(c.cluster == tc, mp)); err != nil {
			return err
		}
	}
	return nil
}

func legacyNetwork(peer bool, mp *mesh.MultiPrimaryRecord) *mesh.LabelChange {
	if peer {
		return mp.Network
	}
	return nil
}

// unlinkReader deletes the caller's token binding, which revokes its token,
// and kubectl-mesh's reader when no other caller's token uses it.
func (o *UnlinkOptions) unlinkReader(ctx context.Context, log *stepLog, tc *cli.Cluster, ta applier, caller string, mp *mesh.MultiPrimaryRecord) error {
	deleted, err := ta.remove(ctx, gvrSecret, rules.IstioSystemNamespace, mp.TokenBinding)
	if err != nil {
		return fmt.Errorf("%s: %w", tc.Context, err)
	}
	log.line(tc.Context, result(deleted), "reader token", fmt.Sprintf("Secret istio-system/%s deleted: the token bound to it is revoked", mp.TokenBinding))
	if !mp.ReaderOwned {
		log.line(tc.Context, stepSkipped, "reader", fmt.Sprintf("ServiceAccount istio-system/%s is Istio's and stays", mp.Reader))
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
		log.line(tc.Context, stepSkipped, "reader", fmt.Sprintf("ServiceAccount, ClusterRole and ClusterRoleBinding %s kept: the remote secrets of %s use it", mp.Reader, strings.Join(users, ", ")))
		return nil
	}
	for _, x := range []struct {
		what string
		do   func() (bool, error)
	}{
		{"ClusterRoleBinding " + mp.Reader, func() (bool, error) { return ta.remove(ctx, gvrClusterRoleBinding, "", mp.Reader) }},
		{"ClusterRole " + mp.Reader, func() (bool, error) { return ta.remove(ctx, gvrClusterRole, "", mp.Reader) }},
		{"ServiceAccount istio-system/" + mp.Reader, func() (bool, error) {
			return ta.remove(ctx, gvrServiceAccount, rules.IstioSystemNamespace, mp.Reader)
		}},
	} {
		deleted, err := x.do()
		if err != nil {
			return fmt.Errorf("%s: %w", tc.Context, err)
		}
		log.line(tc.Context, result(deleted), "reader", x.what+" deleted: no other link uses it")
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
// older link recorded the change of istio-system in its record only.
func (o *UnlinkOptions) restoreNetworks(ctx context.Context, log *stepLog, c *cli.Cluster, a applier, legacy *mesh.LabelChange) error {
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
		ns.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}
		log.object(ns)
		if a.writes() {
			if _, err := c.Kube.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{FieldManager: rules.FieldManager, DryRun: a.dryRunOpt()}); err != nil {
				return fmt.Errorf("%s: restore the network label of namespace istio-system: %w; run unlink again", c.Context, err)
			}
		}
		log.line(c.Context, stepChanged, "network", "namespace istio-system: "+what)
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
		s.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}
		log.object(s)
		if a.writes() {
			if _, err := c.Kube.CoreV1().Services(s.Namespace).Update(ctx, s, metav1.UpdateOptions{FieldManager: rules.FieldManager, DryRun: a.dryRunOpt()}); err != nil {
				return fmt.Errorf("%s: restore the network label of Service %s/%s: %w; run unlink again", c.Context, s.Namespace, s.Name, err)
			}
		}
		log.line(c.Context, stepChanged, "network", fmt.Sprintf("Service %s/%s: %s", s.Namespace, s.Name, what))
	}
	return nil
}
