package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/meshconfig"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

const unlinkLong = `Undo "kubectl mesh link --from CTX1 --to CTX2".

unlink reads the link record in CTX1's mesh-system namespace and removes
exactly what link added: the global DNS block or stub domain (the ConfigMap
gets back its original text, byte for byte), the DNS proxying setting of
--enable-dns-capture (the mesh config gets back its text, or, when someone
edited it since, just that setting), what --multi-primary added, and the
record. This works as well after a link that failed or was interrupted:
its record says what it may have changed, and what it never got to write
is left alone. DNS changes stay while another link of CTX1 still needs
them. The
*.local Gateway in CTX2 stays: other clusters may call through it; a
*.global Gateway that an older version of link wrote there is removed.

Of --multi-primary: the remote secret in CTX1, the token binding Secret in
CTX2 (which revokes the token), kubectl-mesh's reader ServiceAccount,
ClusterRole and ClusterRoleBinding in CTX2 when no other caller's token
uses them (Istio's reader stays), and the network labels link set, put back
as they were, once neither cluster is part of another multi-primary link.
With --multi-primary, unlink removes only that and keeps the rest of the
link.`

const unlinkExample = `  # Stop cluster1 calling cluster2
  kubectl mesh unlink --from cluster1 --to cluster2

  # See what would be removed
  kubectl mesh unlink --from cluster1 --to cluster2 --dry-run=client

  # Stop cluster1's istiod reading cluster2, keep the rest of the link
  kubectl mesh unlink --from cluster1 --to cluster2 --multi-primary`

// UnlinkOptions are the options of `kubectl mesh unlink`.
type UnlinkOptions struct {
	From, To      string
	Bidirectional bool
	// MultiPrimary undoes only what --multi-primary added and keeps the
	// rest of the link.
	MultiPrimary bool
	DryRun       string
	Output       string

	factory cli.Factory
	genericiooptions.IOStreams
}

// NewCmdUnlink returns `kubectl mesh unlink`.
func NewCmdUnlink(f cli.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &UnlinkOptions{factory: f, IOStreams: streams, DryRun: "none"}
	cmd := &cobra.Command{
		Use:     "unlink --from CONTEXT --to CONTEXT",
		Short:   "Remove what kubectl mesh link added between two clusters",
		Long:    unlinkLong,
		Example: unlinkExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.From, "from", "", "Context of the calling cluster (holds the link record).")
	fl.StringVar(&o.To, "to", "", "Context of the called cluster.")
	fl.BoolVar(&o.Bidirectional, "bidirectional", false, "Unlink both ways.")
	fl.BoolVar(&o.MultiPrimary, "multi-primary", false, "Remove only what link --multi-primary added (remote secret, reader token and, when no other link uses them, the reader RBAC and network labels) and keep the rest of the link.")
	fl.StringVar(&o.DryRun, "dry-run", o.DryRun, `Must be "none", "client" or "server".`)
	fl.StringVarP(&o.Output, "output", "o", "", "Print the objects as they are (or would be) written back: yaml or json.")
	return cmd
}

// Validate checks the flags.
func (o *UnlinkOptions) Validate() error {
	if o.From == "" || o.To == "" {
		return errors.New("both --from and --to are required, as given to kubectl mesh link")
	}
	if o.From == o.To {
		return fmt.Errorf("--from and --to are both %q; name the two linked clusters", o.From)
	}
	return validateLinkOutput(o.DryRun, o.Output)
}

// Run unlinks.
func (o *UnlinkOptions) Run(ctx context.Context) error {
	if err := o.factory.CheckContexts(o.From, o.To); err != nil {
		return err
	}
	log := &stepLog{out: o.Out, objOut: o.Out, dryRun: o.DryRun, output: o.Output}
	if o.Output != "" {
		log.out = o.ErrOut
	}
	pairs := [][2]string{{o.From, o.To}}
	if o.Bidirectional {
		pairs = append(pairs, [2]string{o.To, o.From})
	}
	var errs []error
	for _, p := range pairs {
		if err := o.unlink(ctx, log, p[0], p[1]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := log.flush(); err != nil {
		errs = append(errs, err)
	}
	return cli.WithInterrupt(ctx, "unlink", errors.Join(errs...))
}

func (o *UnlinkOptions) unlink(ctx context.Context, log *stepLog, from, to string) error {
	fc, err := o.factory.Cluster(from)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	rec, err := readRecord(ctx, fc, to)
	if err != nil {
		return err
	}
	if rec == nil {
		log.line(from, stepSkipped, "record", fmt.Sprintf("no link record %s/%s: %s is not linked to %s", rules.MeshNamespace, mesh.RecordName(to), from, to))
		return nil
	}
	// A link that failed or was interrupted may have stopped before or
	// after its DNS write; the ConfigMap tells which edit to revert.
	if err := settleDNS(ctx, fc, rec); err != nil {
		return err
	}
	fa := applier{dyn: fc.Dynamic, dryRun: o.DryRun}
	if o.MultiPrimary {
		return o.unlinkOnlyMultiPrimary(ctx, log, fc, fa, to, rec)
	}
	var errs []error
	if err := o.unlinkDNS(ctx, log, fc, rec); err != nil {
		errs = append(errs, err)
	}
	if err := o.unlinkMeshConfig(ctx, log, fc, rec); err != nil {
		errs = append(errs, err)
	}
	if err := o.unlinkGlobalGateways(ctx, log, to); err != nil {
		errs = append(errs, err)
	}
	if rec.MultiPrimary != nil {
		if err := o.unlinkMultiPrimary(ctx, log, fc, fa, to, rec); err != nil {
			errs = append(errs, err)
		}
	}
	if len(rec.PeerGatewayCreated) > 0 {
		log.line(to, stepSkipped, "gateway", fmt.Sprintf("Gateway istio-system/%v kept: other clusters may call through it; delete it by hand when no cluster links to %s", rec.PeerGatewayCreated, to))
	}
	if len(errs) > 0 {
		// Keep the record so that unlink can be run again after a fix.
		log.line(from, stepSkipped, "record", "kept because a step failed")
		return errors.Join(errs...)
	}
	deleted, err := fa.remove(ctx, gvrConfigMap, rules.MeshNamespace, mesh.RecordName(to))
	if err != nil {
		return fmt.Errorf("%s: delete link record: %w", from, err)
	}
	log.line(from, result(deleted), "record", fmt.Sprintf("ConfigMap %s/%s deleted", rules.MeshNamespace, mesh.RecordName(to)))
	return nil
}

// unlinkDNS reverts the DNS change, unless another link of the cluster
// still needs the forwarding: then that link's record takes the change
// over, so that the last unlink restores the original.
func (o *UnlinkOptions) unlinkDNS(ctx context.Context, log *stepLog, fc *cli.Cluster, rec *mesh.Record) error {
	if rec.DNS == nil {
		if rec.MeshConfig == nil {
			log.line(fc.Context, stepOK, "dns", "link did not change DNS")
		}
		return nil
	}
	if kept, err := o.handOver(ctx, log, fc, rec, "global forwarding", func(other *mesh.Record) { other.DNS = rec.DNS }); kept || err != nil {
		return err
	}
	t := rec.DNS.Target
	cm, err := fc.Kube.CoreV1().ConfigMaps(t.Namespace).Get(ctx, t.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		log.line(fc.Context, stepSkipped, "dns", fmt.Sprintf("ConfigMap %s is gone", t))
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: read ConfigMap %s: %w", fc.Context, t, err)
	}
	reverted, err := rec.DNS.Revert(cm)
	if err != nil {
		return fmt.Errorf("%s: %w", fc.Context, err)
	}
	if equalStringMaps(reverted.Data, cm.Data) {
		log.line(fc.Context, stepOK, "dns", fmt.Sprintf("%s %s has no global forwarding of kubectl mesh", t.Kind, t))
		return nil
	}
	reverted.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}
	log.object(reverted)
	if o.DryRun != "client" {
		dr := applier{dryRun: o.DryRun}.dryRunOpt()
		if _, err := fc.Kube.CoreV1().ConfigMaps(t.Namespace).Update(ctx, reverted, metav1.UpdateOptions{FieldManager: rules.FieldManager, DryRun: dr}); err != nil {
			return fmt.Errorf("%s: update ConfigMap %s: %w; run unlink again", fc.Context, t, err)
		}
	}
	log.line(fc.Context, stepChanged, "dns", fmt.Sprintf("%s %s key %s restored", t.Kind, t, rec.DNS.Key))
	return nil
}

// handOver gives a change of rec to another link record of the same
// cluster, when there is one: that link still needs the change, and the
// last unlink reverts it. kept says whether it was handed over.
func (o *UnlinkOptions) handOver(ctx context.Context, log *stepLog, fc *cli.Cluster, rec *mesh.Record, what string, take func(*mesh.Record)) (kept bool, err error) {
	others, err := fc.Kube.CoreV1().ConfigMaps(rules.MeshNamespace).List(ctx, metav1.ListOptions{LabelSelector: mesh.RecordLabel + "=" + mesh.RecordLink})
	if err != nil {
		return false, fmt.Errorf("%s: list link records: %w", fc.Context, err)
	}
	for i := range others.Items {
		other, err := mesh.RecordFromConfigMap(&others.Items[i])
		if err != nil || other.Peer == rec.Peer {
			continue
		}
		take(&other)
		next, err := other.ConfigMap()
		if err != nil {
			return false, err
		}
		log.object(next)
		if _, err := (applier{dyn: fc.Dynamic, dryRun: o.DryRun}).apply(ctx, gvrConfigMap, next); err != nil {
			return false, fmt.Errorf("%s: hand the %s change to the link record of %s: %w", fc.Context, what, other.Peer, err)
		}
		log.line(fc.Context, stepSkipped, "dns", fmt.Sprintf("%s kept: the link to %s still needs it (its record now owns the change)", what, other.Peer))
		return true, nil
	}
	return false, nil
}

// unlinkMeshConfig turns Istio's DNS proxying back as it was before
// --enable-dns-capture, unless another link of the cluster still needs it.
func (o *UnlinkOptions) unlinkMeshConfig(ctx context.Context, log *stepLog, fc *cli.Cluster, rec *mesh.Record) error {
	ch := rec.MeshConfig
	if ch == nil {
		return nil
	}
	if kept, err := o.handOver(ctx, log, fc, rec, "DNS proxying", func(other *mesh.Record) { other.MeshConfig = ch }); kept || err != nil {
		return err
	}
	ref := ch.Namespace + "/" + ch.Name
	cm, err := fc.Kube.CoreV1().ConfigMaps(ch.Namespace).Get(ctx, ch.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		log.line(fc.Context, stepSkipped, "dns", fmt.Sprintf("ConfigMap %s is gone", ref))
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
		log.line(fc.Context, stepOK, "dns", fmt.Sprintf("ConfigMap %s: %s no longer set by kubectl mesh", ref, meshconfig.DNSCaptureKey))
		return nil
	}
	reverted.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}
	log.object(reverted)
	if o.DryRun != "client" {
		dr := applier{dryRun: o.DryRun}.dryRunOpt()
		if _, err := fc.Kube.CoreV1().ConfigMaps(ch.Namespace).Update(ctx, reverted, metav1.UpdateOptions{FieldManager: rules.FieldManager, DryRun: dr}); err != nil {
			return fmt.Errorf("%s: update ConfigMap %s: %w; run unlink again", fc.Context, ref, err)
		}
	}
	log.line(fc.Context, stepChanged, "dns", fmt.Sprintf("ConfigMap %s key %s: DNS proxying setting restored; proxies pick it up when they restart", ref, ch.Key))
	return nil
}

// unlinkGlobalGateways removes, in the peer, the *.global Gateways an
// older link wrote: they route nothing on Istio ≥ 1.14. The *.local
// Gateway stays: other clusters may call through it.
func (o *UnlinkOptions) unlinkGlobalGateways(ctx context.Context, log *stepLog, to string) error {
	tc, err := o.factory.Cluster(to)
	if err != nil {
		log.line(to, stepSkipped, "gateway", fmt.Sprintf("--to: %v; *.global Gateways of an older link there stay", err))
		return nil
	}
	list, err := tc.Dynamic.Resource(rules.GatewayGVR).List(ctx, metav1.ListOptions{LabelSelector: rules.ManagedByLabel + "=" + rules.ManagedByValue})
	if err != nil {
		return fmt.Errorf("%s: list Gateways: %w", to, err)
	}
	ta := applier{dyn: tc.Dynamic, dryRun: o.DryRun}
	for i := range list.Items {
		gw := &list.Items[i]
		if !mesh.IsGlobalPassthrough(gw) {
			continue
		}
		deleted, err := ta.remove(ctx, rules.GatewayGVR, gw.GetNamespace(), gw.GetName())
		if err != nil {
			return fmt.Errorf("%s: %w", to, err)
		}
		log.line(to, result(deleted), "gateway", fmt.Sprintf("Gateway %s/%s (%s, of an older link) deleted: it routes nothing on Istio ≥ 1.14", gw.GetNamespace(), gw.GetName(), mesh.GlobalHosts))
	}
	return nil
}

func equalStringMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}
