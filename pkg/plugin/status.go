package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/dns"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/gateway"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/link"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/meshconfig"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

const statusLong = `Report the health of the whole mesh in one screen.

For every cluster: the root of its Istio CA and whether all roots match,
when its intermediate expires, istiocoredns and DNS forwarding of the global
zone (or, without istiocoredns, Istio's DNS proxying), its gateway address,
mesh-webhook, and the services exported into it.
For every link: the peer's gateway and whether the peer answers. Then the
problems, each with its object and the fix: duplicate VIPs, VIPs outside
the class-E rules, stale .global entries, endpoints that no longer point at
the source cluster's gateway, .global subsets that select nothing, .global
names no DNS answers, VirtualService routes to subsets no DestinationRule
defines, locality policies that do nothing (failover without outlier
detection, dropped by a port-level setting, on endpoints without locality),
and unreachable peers. Then every route: for each port and subset of every
.global entry, the SNI the caller sends, the source gateway and Gateway
that take it, and the source Service it lands on, with the problems of
routes that land nowhere (plain text or the default SNI, no *.local
AUTO_PASSTHROUGH server on the gateway's pods, a missing Service, port or
subset in the source).
For multi-primary meshes, every remote secret (Secrets labelled
istio/multiCluster: "true", whoever wrote them) is asked of the server it
names, as its token: whether the server answers and accepts the token,
whether the token may list Services and EndpointSlices and read Secrets,
and when it expires (a warning within 30 days); and the mesh: cluster names
unique and the peers' own, mesh IDs and roots the same, every cluster
labelled with its network, and every peer on another network reached
through a gateway of that network with a *.local AUTO_PASSTHROUGH server.
The exit code is 1 when there is a problem (not for warnings), so status
can gate CI.`

const statusExample = `  # Every context of the kubeconfig that has istio-system
  kubectl mesh status

  # Some clusters, as JSON
  kubectl mesh status --contexts cluster1,cluster2 -o json`

// Webhook object names, as deploy/webhook installs them.
const webhookName = "mesh-webhook"

// StatusOptions are the options of `kubectl mesh status`.
type StatusOptions struct {
	Contexts   []string
	Timeout    time.Duration
	PrintFlags *cli.PrintFlags

	// factory gives every client; after Complete, with the timeout.
	factory cli.Factory
	// contexts are the clusters to report on; explicit says the user
	// named them, so that one that cannot be read is an error rather
	// than left out.
	contexts []string
	explicit bool
	genericiooptions.IOStreams
}

// NewCmdStatus returns `kubectl mesh status`.
func NewCmdStatus(f cli.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &StatusOptions{factory: f, IOStreams: streams, Timeout: 5 * time.Second, PrintFlags: cli.NewReportPrintFlags()}
	cmd := &cobra.Command{
		Use:     "status [--contexts CTX1,CTX2,...]",
		Short:   "Report the health of the mesh across clusters; exit 1 on problems",
		Long:    statusLong,
		Example: statusExample,
		Args:    cobra.NoArgs,
		RunE:    cli.RunE(o),
	}
	cmd.Flags().StringSliceVar(&o.Contexts, "contexts", nil, "Contexts to report on (default: every context of the kubeconfig whose cluster has istio-system).")
	cmd.Flags().DurationVar(&o.Timeout, "peer-timeout", o.Timeout, "How long to wait for a cluster or linked peer to answer.")
	o.PrintFlags.AddFlags(cmd)
	return cmd
}

// Complete resolves the contexts to report on: --contexts, else every
// context of the kubeconfig.
func (o *StatusOptions) Complete(_ *cobra.Command, _ []string) error {
	o.factory = o.factory.WithTimeout(o.Timeout)
	o.contexts, o.explicit = o.Contexts, len(o.Contexts) > 0
	if !o.explicit {
		all, err := o.factory.Contexts()
		if err != nil {
			return err
		}
		o.contexts = all
	}
	return o.factory.CheckContexts(o.contexts...)
}

// Validate checks the flags.
func (o *StatusOptions) Validate() error {
	if o.Timeout <= 0 {
		return fmt.Errorf("--peer-timeout must be positive")
	}
	for _, c := range o.Contexts {
		if c == "" {
			return errors.New("--contexts has an empty name; list contexts separated by commas")
		}
	}
	return o.PrintFlags.Validate()
}

// Run fetches what every cluster holds, checks it and prints the report;
// it returns an error when there are problems so that the exit code is 1.
func (o *StatusOptions) Run(ctx context.Context) error {
	var clusters []*mesh.ClusterFacts
	for _, name := range o.contexts {
		f, err := o.gather(ctx, name)
		if err != nil {
			if o.explicit {
				return fmt.Errorf("--contexts: %w", err)
			}
			continue // not a mesh cluster, or not reachable: not part of the default set
		}
		clusters = append(clusters, f)
	}
	if len(clusters) == 0 {
		return errors.New("no context of the kubeconfig has a reachable cluster with namespace istio-system; pass --contexts")
	}
	rep := mesh.BuildReport(clusters, o.askPeers(ctx, clusters), time.Now())
	if err := o.PrintFlags.PrintReport(o.Out, rep, func(out io.Writer) error { return printStatus(out, rep) }); err != nil {
		return err
	}
	if n := len(rep.Problems); n > 0 {
		return fmt.Errorf("%d problem(s) found", n)
	}
	return nil
}

// gather reads everything the checks need of one cluster.
func (o *StatusOptions) gather(ctx context.Context, name string) (*mesh.ClusterFacts, error) {
	c, err := o.factory.Cluster(name)
	if err != nil {
		return nil, err
	}
	istioNS, err := c.Kube.CoreV1().Namespaces().Get(ctx, rules.IstioSystemNamespace, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: namespace istio-system: %w", name, err)
	}
	f := &mesh.ClusterFacts{
		Status: mesh.ClusterStatus{Context: name, Webhook: "not installed", Exported: []string{}},
		Server: c.Config.Host,
	}
	cs := &f.Status
	o.readMultiPrimary(ctx, c, cs, istioNS.Labels[mesh.NetworkLabel])
	readCerts(ctx, c, cs)
	readDNS(ctx, c, cs)
	if addr, err := gateway.Discover(ctx, c.Kube, gateway.Options{}); err != nil {
		cs.GatewayError = err.Error()
	} else {
		cs.Gateway = addr.String()
		f.Gateway = &mesh.GatewayAddress{Host: addr.Host, Port: addr.Port}
	}
	cs.Webhook = webhookState(ctx, c)
	if err := readMeshObjects(ctx, c, f); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := readRouteObjects(ctx, c, f); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}

// readCerts reads the roots and the intermediate's expiry of the
// cluster's cacerts.
func readCerts(ctx context.Context, c *cli.Cluster, cs *mesh.ClusterStatus) {
	b, err := pki.ReadClusterBundle(ctx, c.Kube)
	if err != nil {
		cs.CertsError = err.Error()
		return
	}
	if roots, err := b.Roots(); err != nil {
		cs.CertsError = err.Error()
	} else {
		for _, r := range roots {
			cs.RootFingerprints = append(cs.RootFingerprints, pki.Fingerprint(r))
		}
	}
	if im, err := b.Intermediate(); err == nil {
		t := im.NotAfter.UTC()
		cs.IntermediateExpires = &t
	}
}

// readDNS reads how the cluster answers .global names: istiocoredns and
// the cluster DNS forwarding the global zone to it, else Istio's DNS
// proxying.
func readDNS(ctx context.Context, c *cli.Cluster, cs *mesh.ClusterStatus) {
	if ip, err := link.IstioCoreDNS(ctx, c); err == nil {
		cs.IstioCoreDNS = ip
	}
	if cm, t, _, err := dns.Detect(ctx, c.Kube, "", ""); err != nil {
		cs.DNSError = err.Error()
	} else {
		cs.DNSConfigMap = string(t.Kind) + " " + t.String()
		if fwd, err := dns.Forwarding(cm, t); err != nil {
			cs.DNSError = err.Error()
		} else {
			cs.GlobalForwarding = fwd
			cs.GlobalDNS = cs.IstioCoreDNS != "" && slices.Contains(fwd, cs.IstioCoreDNS)
		}
	}
	if cs.IstioCoreDNS == "" {
		if cm, err := meshconfig.Find(ctx, c.Kube, ""); err == nil {
			cs.DNSProxy, _ = meshconfig.DNSCapture(cm.Data[meshconfig.Key])
			cs.GlobalDNS = cs.DNSProxy
		}
	}
}

func readMeshObjects(ctx context.Context, c *cli.Cluster, f *mesh.ClusterFacts) error {
	ses, err := c.Dynamic.Resource(rules.ServiceEntryGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list ServiceEntries: %w", err)
	}
	for i := range ses.Items {
		re := mesh.RouteEntryFrom(&ses.Items[i])
		e := re.Entry
		f.Entries = append(f.Entries, e)
		f.Routes.Entries = append(f.Routes.Entries, re)
		if e.Managed && e.Global() {
			f.Status.Exported = append(f.Status.Exported, e.Hosts[0])
		}
	}
	slices.Sort(f.Status.Exported)
	drs, err := c.Dynamic.Resource(rules.DestinationRuleGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list DestinationRules: %w", err)
	}
	for i := range drs.Items {
		f.DestRules = append(f.DestRules, mesh.DestRuleFrom(&drs.Items[i]))
		f.Traffic = append(f.Traffic, mesh.TrafficRuleFrom(&drs.Items[i]))
		f.Routes.Rules = append(f.Routes.Rules, mesh.TLSRuleFrom(&drs.Items[i]))
	}
	vss, err := c.Dynamic.Resource(rules.VirtualServiceGVR).List(ctx, metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("list VirtualServices: %w", err)
	}
	if err == nil {
		for i := range vss.Items {
			f.Dests = append(f.Dests, mesh.VirtualServiceDestinations(&vss.Items[i])...)
		}
	}
	cms, err := c.Kube.CoreV1().ConfigMaps(rules.MeshNamespace).List(ctx, metav1.ListOptions{LabelSelector: mesh.RecordLabel + "=" + mesh.RecordLink})
	if err != nil {
		return fmt.Errorf("list link records: %w", err)
	}
	for i := range cms.Items {
		if r, err := mesh.RecordFromConfigMap(&cms.Items[i]); err == nil {
			f.Records = append(f.Records, r)
		}
	}
	return nil
}

// webhookState says what can be checked from outside: the configurations
// exist, and the Service has ready endpoints. Whether the pods answer TLS
// is not checked: the API server's admission calls do that.
func webhookState(ctx context.Context, c *cli.Cluster) string {
	adm := c.Kube.AdmissionregistrationV1()
	_, errM := adm.MutatingWebhookConfigurations().Get(ctx, webhookName, metav1.GetOptions{})
	_, errV := adm.ValidatingWebhookConfigurations().Get(ctx, webhookName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(errM) && apierrors.IsNotFound(errV):
		return "not installed"
	case errM != nil || errV != nil:
		return "incomplete: " + strings.TrimSpace(fmt.Sprintf("%v %v", nilIfNotFound(errM), nilIfNotFound(errV)))
	}
	slices, err := c.Kube.DiscoveryV1().EndpointSlices(rules.MeshNamespace).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + webhookName})
	if err != nil {
		return "installed, endpoints unknown: " + err.Error()
	}
	for _, s := range slices.Items {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				return "installed, serving"
			}
		}
	}
	return "installed, no ready endpoints"
}

func nilIfNotFound(err error) any {
	if apierrors.IsNotFound(err) {
		return "missing configuration"
	}
	if err == nil {
		return ""
	}
	return err
}

// askPeers asks each linked peer that is not among the reported clusters
// whether it answers, within the timeout; the map holds the error each
// gave (nil: it answered).
func (o *StatusOptions) askPeers(ctx context.Context, clusters []*mesh.ClusterFacts) map[string]error {
	reported := map[string]bool{}
	for _, f := range clusters {
		reported[f.Status.Context] = true
	}
	peers := map[string]error{}
	for _, f := range clusters {
		for _, r := range f.Records {
			if _, asked := peers[r.Peer]; !asked && !reported[r.Peer] {
				peers[r.Peer] = o.askPeer(ctx, r.Peer)
			}
		}
	}
	return peers
}

func (o *StatusOptions) askPeer(ctx context.Context, peer string) error {
	known, err := o.factory.Contexts()
	if err != nil || !slices.Contains(known, peer) {
		return fmt.Errorf("context %q is not in the kubeconfig", peer)
	}
	c, err := o.factory.Cluster(peer)
	if err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	_, err = c.Kube.CoreV1().Namespaces().Get(tctx, rules.IstioSystemNamespace, metav1.GetOptions{})
	return err
}

// printStatus is the table of the report: clusters, links, the mesh's
// remote secrets, routes, then warnings and problems.
func printStatus(out io.Writer, rep *mesh.Report) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CLUSTER\tROOT\tROOTS MATCH\tINTERMEDIATE EXPIRES\tISTIOCOREDNS\tGLOBAL DNS\tGATEWAY\tMESH-WEBHOOK\tEXPORTED")
	for _, cs := range rep.Clusters {
		root, expires := "none", "-"
		if len(cs.RootFingerprints) > 0 {
			root = short(cs.RootFingerprints[0])
		} else if cs.CertsError != "" {
			root = "none (no cacerts)"
		}
		if cs.IntermediateExpires != nil {
			expires = cs.IntermediateExpires.Format("2006-01-02")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", cs.Context, root, yesNo(cs.RootsMatch), expires,
			orDash(cs.IstioCoreDNS), dnsCell(cs), orDash(cs.Gateway), cs.Webhook, len(cs.Exported))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := printLinks(out, rep.Links); err != nil {
		return err
	}
	if err := printMultiPrimary(out, rep); err != nil {
		return err
	}
	if len(rep.Routes) > 0 {
		fmt.Fprintln(out)
		if err := printRoutes(out, rep.Routes); err != nil {
			return err
		}
	}
	if len(rep.Warnings) > 0 {
		fmt.Fprintln(out)
		printProblems(out, "WARNINGS", rep.Warnings)
	}
	fmt.Fprintln(out)
	if len(rep.Problems) == 0 {
		_, err := fmt.Fprintln(out, "No problems found.")
		return err
	}
	printProblems(out, "PROBLEMS", rep.Problems)
	return nil
}

// printLinks is the LINK table, when there are links.
func printLinks(out io.Writer, links []mesh.LinkStatus) error {
	if len(links) == 0 {
		return nil
	}
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "LINK\tGATEWAY\tGATEWAY NOW\tREACHABLE\tROOTS MATCH\tMULTI-PRIMARY")
	for _, l := range links {
		match := "unknown"
		if l.RootsMatch != nil {
			match = yesNo(*l.RootsMatch)
		}
		fmt.Fprintf(w, "%s -> %s\t%s\t%s\t%s\t%s\t%s\n", l.From, l.To, l.Gateway, orDash(l.GatewayNow), yesNo(l.Reachable), match, yesNo(l.MultiPrimar))
	}
	return w.Flush()
}

func printProblems(out io.Writer, title string, ps []mesh.Problem) {
	fmt.Fprintf(out, "%s (%d)\n", title, len(ps))
	for _, p := range ps {
		fmt.Fprintf(out, "- %s: %s [%s]: %s\n    fix: %s\n", p.Cluster, p.Object, p.Kind, p.Message, p.Fix)
	}
}

func dnsCell(cs *mesh.ClusterStatus) string {
	switch {
	case cs.DNSError != "":
		return "unknown"
	case cs.DNSProxy:
		return "dns proxy"
	case cs.GlobalDNS:
		return "forwarded"
	case len(cs.GlobalForwarding) > 0:
		return "to " + strings.Join(cs.GlobalForwarding, ",")
	}
	return "no"
}

func short(fp string) string {
	if len(fp) > 23 {
		return fp[:23] + "…"
	}
	return fp
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
