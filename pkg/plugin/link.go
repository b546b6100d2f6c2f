package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/dns"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/gateway"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/link"
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
	PrintFlags       *cli.PrintFlags

	dryRunFlag string
	// Parsed in Complete.
	dryRun                cli.DryRun
	dnsNamespace, dnsName string
	gatewayAddress        *gateway.Address
	// networks and servers are --network and --server by context.
	networks, servers map[string]string

	factory cli.Factory
	now     func() time.Time
	genericiooptions.IOStreams
}

// NewLinkOptions returns options with the defaults.
func NewLinkOptions(f cli.Factory, streams genericiooptions.IOStreams) *LinkOptions {
	return &LinkOptions{factory: f, IOStreams: streams, TokenExpiry: 365 * 24 * time.Hour, now: time.Now,
		GatewayNamespace: gateway.DefaultNamespace, PrintFlags: cli.NewPrintFlags("linked")}
}

// NewCmdLink returns `kubectl mesh link`.
func NewCmdLink(f cli.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	return newCmdLink(NewLinkOptions(f, streams))
}

func newCmdLink(o *LinkOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "link --from CONTEXT --to CONTEXT",
		Short:   "Let one cluster call the services of another (DNS, trust, gateways)",
		Long:    linkLong,
		Example: linkExample,
		Args:    cobra.NoArgs,
		RunE:    cli.RunE(o),
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
	fl.StringVar(&o.GatewayNamespace, "gateway-namespace", o.GatewayNamespace, "Namespace of the gateway Service of --to.")
	fl.BoolVar(&o.EnableDNSCapture, "enable-dns-capture", false, "Without istiocoredns (Istio 1.8+): turn on Istio's DNS proxying in --from's mesh config so that .global names resolve; unlink turns it back.")
	fl.StringVar(&o.IstioRevision, "istio-revision", "", "Istio revision of --from whose mesh config (ConfigMap istio-<revision>) to read and edit.")
	fl.StringVar(&o.GatewayAddress, "gateway-address", "", "HOST[:PORT] of the gateway of --to, instead of discovering it.")
	fl.DurationVar(&o.TokenExpiry, "token-expiry", o.TokenExpiry, "With --multi-primary: lifetime of the reader token (TokenRequest API); the API server may shorten it.")
	cli.AddDryRunFlag(cmd, &o.dryRunFlag)
	o.PrintFlags.AddFlags(cmd)
	return cmd
}

// Complete parses --dry-run, --dns-configmap, --gateway-address, and
// --network and --server by context, and checks that kubectl's cluster
// flags name one of the two contexts.
func (o *LinkOptions) Complete(_ *cobra.Command, _ []string) error {
	var err error
	if o.dryRun, err = cli.ParseDryRun(o.dryRunFlag); err != nil {
		return err
	}
	if o.DNSConfigMap != "" {
		if o.dnsNamespace, o.dnsName, err = dns.ParseTarget(o.DNSConfigMap); err != nil {
			return err
		}
	}
	if o.GatewayAddress != "" {
		addr, err := gateway.ParseOverride(o.GatewayAddress)
		if err != nil {
			return err
		}
		o.gatewayAddress = &addr
	}
	if o.MultiPrimary {
		if err := o.parseByContext(); err != nil {
			return err
		}
	}
	return o.factory.CheckContexts(o.From, o.To)
}

// Validate checks the flags.
func (o *LinkOptions) Validate() error {
	if o.From == "" || o.To == "" {
		return errors.New("both --from and --to are required: --from is the calling cluster's context, --to the called one's")
	}
	if o.From == o.To {
		return fmt.Errorf("--from and --to are both %q; link two different clusters", o.From)
	}
	if o.DNSConfigMap != "" && o.Bidirectional {
		return errors.New("--dns-configmap names one cluster's ConfigMap and cannot be used with --bidirectional; link each direction on its own")
	}
	if err := o.validateMultiPrimary(); err != nil {
		return err
	}
	return o.PrintFlags.Validate()
}

// Run links --from to --to, and back with --bidirectional.
func (o *LinkOptions) Run(ctx context.Context) error {
	from, err := o.factory.Cluster(o.From)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	to, err := o.factory.Cluster(o.To)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	log := newStepLog(o.IOStreams, o.PrintFlags, o.dryRun)
	l := &link.Linker{Request: o.request(), Log: log, Factory: o.factory}
	pairs := [][2]*cli.Cluster{{from, to}}
	if o.Bidirectional {
		pairs = append(pairs, [2]*cli.Cluster{to, from})
	}
	for _, p := range pairs {
		if err := l.Link(ctx, p[0], p[1]); err != nil {
			return cli.WithInterrupt(ctx, "link", err)
		}
	}
	return printStepObjects(o.Out, o.PrintFlags, log)
}

// request is what the flags ask of the engine.
func (o *LinkOptions) request() link.Request {
	return link.Request{
		DryRun: o.dryRun, SkipTrustCheck: o.SkipTrustCheck,
		DNSNamespace: o.dnsNamespace, DNSName: o.dnsName,
		EnableDNSCapture: o.EnableDNSCapture, IstioRevision: o.IstioRevision,
		GatewayService: o.GatewayService, GatewayNamespace: o.GatewayNamespace, GatewayAddress: o.gatewayAddress,
		MultiPrimary: o.MultiPrimary, Networks: o.networks, Servers: o.servers, NoSecretRead: o.NoSecretRead,
		TokenExpiry: o.TokenExpiry, TokenRenewBefore: o.TokenRenewBefore, Now: o.now,
	}
}

// newStepLog is the step log of link and unlink: with -o, the step lines
// go to stderr and the objects written to stdout.
func newStepLog(streams genericiooptions.IOStreams, pf *cli.PrintFlags, dry cli.DryRun) *link.StepLog {
	log := &link.StepLog{Out: streams.Out, ErrOut: streams.ErrOut, DryRun: dry, Collect: !pf.Table()}
	if !pf.Table() {
		log.Out = streams.ErrOut
	}
	return log
}

// printStepObjects prints, with -o, the objects the steps wrote (or would
// have); without it, the step lines have said it all.
func printStepObjects(out io.Writer, pf *cli.PrintFlags, log *link.StepLog) error {
	return pf.PrintObjects(out, log.Objects(), func(io.Writer) error { return nil })
}
