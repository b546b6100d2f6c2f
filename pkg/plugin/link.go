package plugin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/dns"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/gateway"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

const linkLong = `Make one cluster able to call the services of another.

link checks that both clusters' Istio CAs share one root, makes the .global
names resolve in the calling cluster (--from), finds the gateway of the
called cluster (--to) and makes sure that gateway passes mTLS for *.local
services through on port 15443. It records what it changes in a ConfigMap
in the mesh-system namespace of --from, so that "kubectl mesh unlink"
removes exactly that and "kubectl mesh status" can check the link. Running
it again changes nothing.

The record is written before each change, marked pending until link has
finished: when a step fails or link is interrupted (Ctrl-C), what it may
have changed is on record. Run link again to finish, or "kubectl mesh
unlink" to undo it; "kubectl mesh status" reports the unfinished link.

DNS: with istiocoredns (Istio 1.5-1.7), the cluster DNS forwards the global
zone to it (CoreDNS Corefile or kube-dns stubDomains). Without it (Istio
1.8 and later) the sidecars answer .global names themselves when Istio's DNS
proxying is on; link reports whether it is, and --enable-dns-capture turns
it on in the mesh config (ConfigMap istio-system/istio, key mesh).

Gateway: Istio's east-west gateway (Service istio-eastwestgateway) when the
called cluster has one, else its ingress gateway; a Gateway with a server on
15443, TLS AUTO_PASSTHROUGH, hosts *.local selecting its pods is reused when
one exists (Istio's cross-network-gateway does), else link writes one.
Exported services are called with their own cluster's SNI
(outbound_.<port>_.<subset>_.<name>.<ns>.svc.cluster.local), which such a
server routes on every Istio since 1.1; the *.global server of older guides
routes nothing since Istio 1.14, and a *.global Gateway an older version of
link wrote is removed.

Multi-primary (--multi-primary, Istio 1.8 and later), as Istio's
multi-primary, multi-network guide builds it: --from's istiod gets a remote
secret for --to like istioctl create-remote-secret's (Secret
istio-system/istio-remote-secret-<cluster>, label istio/multiCluster: "true",
annotation networking.istio.io/cluster, a kubeconfig keyed by the cluster
name), where <cluster> is the clusterName of --to's istiod (its CLUSTER_ID).
The server is the kubeconfig's, or --server; a loopback address gets a
warning. The token is of Istio's istio-reader-service-account when --to has
it, else of kubectl-mesh's reader with the rules of the installed Istio's
reader ClusterRole; Istio's role reads Secrets, istio-system/cacerts too:
--no-secret-read uses kubectl-mesh's reader less Secrets. Tokens come from
the TokenRequest API (--token-expiry, default one year), bound to a Secret
kubectl-mesh-remote-token-<from> in --to that unlink deletes, which revokes
the token; running link within the renewal window (--token-renew-before,
default the last third of the lifetime) replaces the token and revokes the
old one. --network labels istio-system and the east-west gateway Service
topology.istio.io/network. A peer on the same network gets no gateway step;
one on another network needs Istio's east-west gateway (Service
istio-eastwestgateway, pods istio: eastwestgateway), and link says how to
install it (helm values and the IstioOperator, with the objects under -o)
when it is missing. kubectl mesh status checks every remote secret.`

const linkExample = `  # Let cluster1 call services of cluster2
  kubectl mesh link --from cluster1 --to cluster2

  # Both ways, showing what would be written
  kubectl mesh link --from cluster1 --to cluster2 --bidirectional --dry-run=client -o yaml

  # Istio 1.8+ (no istiocoredns): also turn on Istio's DNS proxying in cluster1
  kubectl mesh link --from cluster1 --to cluster2 --enable-dns-capture

  # AKS: edit the managed coredns-custom ConfigMap instead of coredns
  kubectl mesh link --from aks1 --to cluster2 --dns-configmap kube-system/coredns-custom

  # Multi-primary, multi-network (Istio 1.8+): remote secrets both ways, each cluster on its network
  kubectl mesh link --from cluster1 --to cluster2 --bidirectional --multi-primary \
    --network cluster1=network1 --network cluster2=network2 \
    --server cluster1=https://172.18.0.2:6443 --server cluster2=https://172.18.0.3:6443

  # The same, with readers that may not read Secrets (no access to the peer's cacerts key)
  kubectl mesh link --from cluster1 --to cluster2 --multi-primary --network network2 --no-secret-read`

// LinkOptions are the options of `kubectl mesh link`.
type LinkOptions struct {
	From, To         string
	Bidirectional    bool
	DNSConfigMap     string
	SkipTrustCheck   bool
	MultiPrimary     bool
	Networks         []string
	Servers          []string
	NoSecretRead     bool
	TokenRenewBefore time.Duration
	GatewayService   string
	GatewayNamespace string
	GatewayAddress   string
	EnableDNSCapture bool
	IstioRevision    string
	TokenExpiry      time.Duration
	DryRun           string
	Output           string

	factory cli.Factory
	now     func() time.Time
	// networks and servers are --network and --server by context.
	networks, servers map[string]string
	genericiooptions.IOStreams
}

// NewLinkOptions returns options with the defaults.
func NewLinkOptions(f cli.Factory, streams genericiooptions.IOStreams) *LinkOptions {
	return &LinkOptions{factory: f, IOStreams: streams, DryRun: "none", TokenExpiry: 365 * 24 * time.Hour, now: time.Now}
}

// NewCmdLink returns `kubectl mesh link`.
func NewCmdLink(f cli.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewLinkOptions(f, streams)
	cmd := &cobra.Command{
		Use:     "link --from CONTEXT --to CONTEXT",
		Short:   "Let one cluster call the services of another (DNS, trust, gateways)",
		Long:    linkLong,
		Example: linkExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.From, "from", "", "Context of the calling cluster (its DNS is edited).")
	fl.StringVar(&o.To, "to", "", "Context of the called cluster (its gateway is used).")
	fl.BoolVar(&o.Bidirectional, "bidirectional", false, "Link both ways.")
	fl.StringVar(&o.DNSConfigMap, "dns-configmap", "", "NAMESPACE/NAME of the DNS ConfigMap to edit, for managed variants such as kube-system/coredns-custom (default: detect coredns or kube-dns).")
	fl.BoolVar(&o.SkipTrustCheck, "skip-trust-check", false, "Link even if the clusters' cacerts roots differ or are missing.")
	fl.BoolVar(&o.MultiPrimary, "multi-primary", false, "Istio 1.8+: also give --from's istiod a remote secret for --to (like istioctl create-remote-secret), with a reader token of --to.")
	fl.StringArrayVar(&o.Networks, "network", nil, "With --multi-primary: the network of --to (NAME; with --bidirectional, of both) or of a cluster of the link (CONTEXT=NAME, repeatable): labels its istio-system and east-west gateway Service topology.istio.io/network=NAME.")
	fl.StringArrayVar(&o.Servers, "server", nil, "With --multi-primary: the API server address istiod must use to reach --to (URL), or a cluster of the link (CONTEXT=URL, repeatable); default: the kubeconfig's.")
	fl.BoolVar(&o.NoSecretRead, "no-secret-read", false, "With --multi-primary: use a reader that may not read Secrets (Istio's reader role less Secrets, so the peer's istio-system/cacerts key stays unreadable); for meshes whose gateways are served by their own istiod.")
	fl.DurationVar(&o.TokenRenewBefore, "token-renew-before", 0, "With --multi-primary: a re-run replaces the reader token when it expires within this time (default: the last third of its lifetime).")
	fl.StringVar(&o.GatewayService, "gateway-service", "", "Gateway Service of --to that passes *.local through (default: istio-eastwestgateway when it exists, else istio-ingressgateway).")
	fl.StringVar(&o.GatewayNamespace, "gateway-namespace", gateway.DefaultNamespace, "Namespace of the gateway Service of --to.")
	fl.BoolVar(&o.EnableDNSCapture, "enable-dns-capture", false, "Without istiocoredns (Istio 1.8+): turn on Istio's DNS proxying in --from's mesh config so that .global names resolve; unlink turns it back.")
	fl.StringVar(&o.IstioRevision, "istio-revision", "", "Istio revision of --from whose mesh config (ConfigMap istio-<revision>) to read and edit.")
	fl.StringVar(&o.GatewayAddress, "gateway-address", "", "HOST[:PORT] of the gateway of --to, instead of discovering it.")
	fl.DurationVar(&o.TokenExpiry, "token-expiry", o.TokenExpiry, "With --multi-primary: lifetime of the reader token (TokenRequest API); the API server may shorten it.")
	fl.StringVar(&o.DryRun, "dry-run", o.DryRun, `Must be "none", "client" (write nothing, ask nothing) or "server" (send every write as a dry run).`)
	fl.StringVarP(&o.Output, "output", "o", "", "Print the objects that are (or would be) written: yaml or json. Step lines then go to stderr.")
	return cmd
}

// Validate checks the flags.
func (o *LinkOptions) Validate() error {
	if o.From == "" || o.To == "" {
		return errors.New("both --from and --to are required: --from is the calling cluster's context, --to the called one's")
	}
	if o.From == o.To {
		return fmt.Errorf("--from and --to are both %q; link two different clusters", o.From)
	}
	if o.DNSConfigMap != "" {
		if _, _, err := dns.ParseTarget(o.DNSConfigMap); err != nil {
			return err
		}
		if o.Bidirectional {
			return errors.New("--dns-configmap names one cluster's ConfigMap and cannot be used with --bidirectional; link each direction on its own")
		}
	}
	if err := o.validateMultiPrimary(); err != nil {
		return err
	}
	if o.GatewayAddress != "" {
		if _, err := gateway.ParseOverride(o.GatewayAddress); err != nil {
			return err
		}
	}
	return validateLinkOutput(o.DryRun, o.Output)
}

// Run links --from to --to, and back with --bidirectional.
func (o *LinkOptions) Run(ctx context.Context) error {
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
	for _, p := range pairs {
		if err := o.link(ctx, log, p[0], p[1]); err != nil {
			return cli.WithInterrupt(ctx, "link", err)
		}
	}
	return log.flush()
}

type linkRun struct {
	o          *LinkOptions
	log        *stepLog
	from, to   *cli.Cluster
	fromA, toA applier
	record     mesh.Record
	previous   *mesh.Record
	// saved is the record as --from holds it now: previous, or the last
	// pending record this run wrote before a change.
	saved *mesh.Record
}

func (o *LinkOptions) link(ctx context.Context, log *stepLog, from, to string) error {
	fc, err := o.factory.Cluster(from)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	tc, err := o.factory.Cluster(to)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	r := &linkRun{o: o, log: log, from: fc, to: tc,
		fromA: applier{dyn: fc.Dynamic, dryRun: o.DryRun}, toA: applier{dyn: tc.Dynamic, dryRun: o.DryRun},
		record: mesh.Record{Peer: to, Server: tc.Config.Host, LinkedAt: o.now().UTC()},
	}
	if prev, err := readRecord(ctx, fc, to); err != nil {
		return err
	} else if prev != nil {
		r.previous, r.saved = prev, prev
		r.record.LinkedAt = prev.LinkedAt
		r.record.DNS = prev.DNS
		r.record.PendingDNS = prev.PendingDNS
		r.record.MeshConfig = prev.MeshConfig
		r.record.PeerGatewayCreated = prev.PeerGatewayCreated
		r.record.MultiPrimary = prev.MultiPrimary
		// An earlier link stopped half-way: take what it did write.
		if err := settleDNS(ctx, fc, &r.record); err != nil {
			return err
		}
	}
	for _, step := range []func(context.Context) error{r.trust, r.dns, r.gateway, r.multiPrimary, r.save} {
		if err := step(ctx); err != nil {
			if r.saved != nil && r.saved.Pending && r.fromA.writes() && r.o.DryRun != "server" {
				return fmt.Errorf("%w\nwhat link changed so far is recorded in ConfigMap %s/%s of %s: run link again to finish, or undo it with kubectl mesh unlink --from %s --to %s",
					err, rules.MeshNamespace, mesh.RecordName(to), from, from, to)
			}
			return err
		}
	}
	return nil
}

// settleDNS resolves a DNS edit that a link recorded but may have stopped
// before writing: the ConfigMap tells whether it was written.
func settleDNS(ctx context.Context, c *cli.Cluster, rec *mesh.Record) error {
	if rec.PendingDNS == nil {
		return nil
	}
	t := rec.PendingDNS.Target
	cm, err := c.Kube.CoreV1().ConfigMaps(t.Namespace).Get(ctx, t.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		cm = nil
	case err != nil:
		return fmt.Errorf("%s: read ConfigMap %s (a DNS edit of an unfinished link): %w", c.Context, t, err)
	}
	rec.DNS, rec.PendingDNS = dns.Settle(rec.DNS, rec.PendingDNS, cm), nil
	return nil
}

func readRecord(ctx context.Context, c *cli.Cluster, peer string) (*mesh.Record, error) {
	cm, err := c.Kube.CoreV1().ConfigMaps(rules.MeshNamespace).Get(ctx, mesh.RecordName(peer), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: read link record %s/%s: %w", c.Context, rules.MeshNamespace, mesh.RecordName(peer), err)
	}
	rec, err := mesh.RecordFromConfigMap(cm)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Context, err)
	}
	return &rec, nil
}

// trust compares the roots of both clusters' cacerts.
func (r *linkRun) trust(ctx context.Context) error {
	fromFP, fromErr := rootFingerprints(ctx, r.from)
	toFP, toErr := rootFingerprints(ctx, r.to)
	fix := ("install certificates from one root in both with `kubectl mesh certs install` (see kubectl mesh certs install --help), or pass --skip-trust-check")
	var problem string
	switch {
	case fromErr != nil:
		problem = fmt.Sprintf("%s: %v", r.from.Context, fromErr)
	case toErr != nil:
		problem = fmt.Sprintf("%s: %v", r.to.Context, toErr)
	case !slices.ContainsFunc(fromFP, func(fp string) bool { return slices.Contains(toFP, fp) }):
		problem = fmt.Sprintf("the clusters trust different roots: %s has root %s, %s has root %s", r.from.Context, strings.Join(fromFP, ","), r.to.Context, strings.Join(toFP, ","))
	}
	if problem == "" {
		r.log.line(r.from.Context, stepOK, "trust", "both clusters share root "+sharedRoot(fromFP, toFP))
		return nil
	}
	if r.o.SkipTrustCheck {
		r.log.line(r.from.Context, stepSkipped, "trust", "--skip-trust-check: "+problem)
		return nil
	}
	return fmt.Errorf("%s; %s", problem, fix)
}

func sharedRoot(a, b []string) string {
	for _, fp := range a {
		if slices.Contains(b, fp) {
			return fp
		}
	}
	return ""
}

func rootFingerprints(ctx context.Context, c *cli.Cluster) ([]string, error) {
	b, err := pki.ReadClusterBundle(ctx, c.Kube)
	if err != nil {
		return nil, err
	}
	roots, err := b.Roots()
	if err != nil {
		return nil, err
	}
	fps := make([]string, 0, len(roots))
	for _, root := range roots {
		fps = append(fps, pki.Fingerprint(root))
	}
	return fps, nil
}

// errNoIstioCoreDNS: the cluster has no istiocoredns Service (Istio ≥ 1.8
// removed it; its sidecars answer DNS themselves).
var errNoIstioCoreDNS = errors.New("service istio-system/istiocoredns not found")

// istioCoreDNS is the ClusterIP of istiocoredns.
func istioCoreDNS(ctx context.Context, c *cli.Cluster) (string, error) {
	svc, err := c.Kube.CoreV1().Services(rules.IstioSystemNamespace).Get(ctx, "istiocoredns", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", fmt.Errorf("%s: %w", c.Context, errNoIstioCoreDNS)
	}
	if err != nil {
		return "", fmt.Errorf("%s: read Service istio-system/istiocoredns: %w", c.Context, err)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return "", fmt.Errorf("%s: Service istio-system/istiocoredns has no ClusterIP; it must be a ClusterIP Service", c.Context)
	}
	return svc.Spec.ClusterIP, nil
}

// dns makes the `.global` names resolve in --from: with istiocoredns
// (Istio ≤ 1.7) by forwarding the global zone of the cluster DNS to it,
// without it (Istio ≥ 1.8) through Istio's DNS proxy.
func (r *linkRun) dns(ctx context.Context) error {
	ip, err := istioCoreDNS(ctx, r.from)
	if errors.Is(err, errNoIstioCoreDNS) {
		return r.dnsProxy(ctx)
	}
	if err != nil {
		return err
	}
	var ns, name string
	if r.o.DNSConfigMap != "" {
		ns, name, _ = dns.ParseTarget(r.o.DNSConfigMap)
	}
	cm, target, warnings, err := dns.Detect(ctx, r.from.Kube, ns, name)
	if err != nil {
		return fmt.Errorf("%s: %w", r.from.Context, err)
	}
	for _, w := range warnings {
		fmt.Fprintf(r.o.ErrOut, "Warning: %s: %s\n", r.from.Context, w)
	}
	ch, err := dns.Apply(cm, target, ip)
	if err != nil {
		return fmt.Errorf("%s: %w", r.from.Context, err)
	}
	if ch == nil {
		r.log.line(r.from.Context, stepOK, "dns", fmt.Sprintf("%s %s forwards global to istiocoredns %s", target.Kind, target, ip))
		return nil
	}
	patched := ch.Patched(cm)
	patched.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}
	r.log.object(patched)
	r.record.PendingDNS = ch
	if err := r.savePending(ctx); err != nil {
		return err
	}
	if err := r.updateConfigMap(ctx, patched); err != nil {
		return err
	}
	r.record.DNS, r.record.PendingDNS = dns.Compose(r.record.DNS, ch), nil
	r.log.line(r.from.Context, stepChanged, "dns", fmt.Sprintf("%s %s key %s: global forwarded to istiocoredns %s", target.Kind, target, ch.Key, ip))
	return nil
}

// savePending writes the record, marked pending, before a step changes
// anything, so that whatever happens next (a failed step, an interrupt,
// a killed process) unlink knows what to revert. Nothing is written when
// the record --from holds already covers the change, so that running
// link again writes nothing.
func (r *linkRun) savePending(ctx context.Context) error {
	rec := r.record
	rec.Pending = true
	if r.saved != nil && covers(*r.saved, rec) {
		return nil
	}
	if !r.fromA.writes() {
		r.saved = &rec
		return nil
	}
	if _, err := r.write(ctx, rec); err != nil {
		return fmt.Errorf("%s: write the link record before changing anything (nothing was changed): %w", r.from.Context, err)
	}
	r.saved = &rec
	return nil
}

// covers reports whether saved already records everything rec would have
// unlink undo. What differs only in bookkeeping (pending, a token's
// expiry) or lists objects saved lists too needs no write before a change.
func covers(saved, rec mesh.Record) bool {
	saved.Pending, rec.Pending = false, false
	if saved.MultiPrimary != nil && rec.MultiPrimary != nil {
		s, r := *saved.MultiPrimary, *rec.MultiPrimary
		for _, o := range r.NetworkLabelled {
			if !slices.Contains(s.NetworkLabelled, o) {
				return false
			}
		}
		s.NetworkLabelled, r.NetworkLabelled = nil, nil
		s.TokenExpires, r.TokenExpires = nil, nil
		saved.MultiPrimary, rec.MultiPrimary = &s, &r
	}
	return saved.SameLink(rec)
}

// save writes the finished link record into --from.
func (r *linkRun) save(ctx context.Context) error {
	r.record.Pending = false
	if r.saved != nil && r.saved.SameLink(r.record) {
		r.log.line(r.from.Context, stepOK, "record", fmt.Sprintf("ConfigMap %s/%s", rules.MeshNamespace, mesh.RecordName(r.record.Peer)))
		return nil
	}
	cm, err := r.record.ConfigMap()
	if err != nil {
		return err
	}
	r.log.object(cm)
	nsFirst, err := r.write(ctx, r.record)
	if err != nil {
		return fmt.Errorf("%s: write link record: %w", r.from.Context, err)
	}
	rec := r.record
	r.saved = &rec
	if nsFirst {
		r.log.line(r.from.Context, stepChanged, "record", fmt.Sprintf("ConfigMap %s/%s (namespace %s would be created first)", rules.MeshNamespace, cm.Name, rules.MeshNamespace))
		return nil
	}
	r.log.line(r.from.Context, stepChanged, "record", fmt.Sprintf("ConfigMap %s/%s: peer %s, gateway %s", rules.MeshNamespace, cm.Name, r.record.Peer, r.record.Gateway))
	return nil
}

// write applies a record (and its namespace) in --from. nsFirst: a server
// dry run could not check the record because its namespace would only be
// created first.
func (r *linkRun) write(ctx context.Context, rec mesh.Record) (nsFirst bool, err error) {
	cm, err := rec.ConfigMap()
	if err != nil {
		return false, err
	}
	if _, err := r.fromA.apply(ctx, gvrNamespace, mesh.NamespaceObject()); err != nil {
		return false, err
	}
	if _, err := r.fromA.apply(ctx, gvrConfigMap, cm); err != nil {
		if r.o.DryRun == "server" && apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}
	return false, nil
}
