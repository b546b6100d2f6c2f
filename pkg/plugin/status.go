package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/dns"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/gateway"
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
	Contexts []string
	Output   string
	Timeout  time.Duration

	factory cli.Factory
	// clusterFor, when set, gives the clients of a context instead of
	// the factory (tests use fake clientsets).
	clusterFor func(context string) (*cli.Cluster, error)
	genericiooptions.IOStreams
}

// NewCmdStatus returns `kubectl mesh status`.
func NewCmdStatus(f cli.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &StatusOptions{factory: f, IOStreams: streams, Timeout: 5 * time.Second}
	cmd := &cobra.Command{
		Use:     "status [--contexts CTX1,CTX2,...]",
		Short:   "Report the health of the mesh across clusters; exit 1 on problems",
		Long:    statusLong,
		Example: statusExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringSliceVar(&o.Contexts, "contexts", nil, "Contexts to report on (default: every context of the kubeconfig whose cluster has istio-system).")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "Output format: json, or leave it out for tables.")
	cmd.Flags().DurationVar(&o.Timeout, "peer-timeout", o.Timeout, "How long to wait for a cluster or linked peer to answer.")
	return cmd
}

// Validate checks the flags.
func (o *StatusOptions) Validate() error {
	if o.Output != "" && o.Output != "json" {
		return fmt.Errorf("--output %q is not supported; use -o json, or leave it out for tables", o.Output)
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("--peer-timeout must be positive")
	}
	for _, c := range o.Contexts {
		if c == "" {
			return errors.New("--contexts has an empty name; list contexts separated by commas")
		}
	}
	return nil
}

// ClusterStatus is one cluster's row.
type ClusterStatus struct {
	Context             string     `json:"context"`
	RootFingerprints    []string   `json:"rootFingerprints,omitempty"`
	RootsMatch          bool       `json:"rootsMatch"`
	CertsError          string     `json:"certsError,omitempty"`
	IntermediateExpires *time.Time `json:"intermediateExpires,omitempty"`
	IstioCoreDNS        string     `json:"istioCoreDNS,omitempty"`
	DNSConfigMap        string     `json:"dnsConfigMap,omitempty"`
	GlobalForwarding    []string   `json:"globalForwarding,omitempty"`
	GlobalDNS           bool       `json:"globalDNS"`
	// DNSProxy says whether Istio's DNS proxying is on in the mesh config
	// (Istio ≥ 1.8, no istiocoredns): then the sidecars answer .global
	// names and GlobalDNS is true.
	DNSProxy     bool     `json:"dnsProxy,omitempty"`
	DNSError     string   `json:"dnsError,omitempty"`
	Gateway      string   `json:"gateway,omitempty"`
	GatewayError string   `json:"gatewayError,omitempty"`
	Webhook      string   `json:"webhook"`
	Exported     []string `json:"exported"`
	// ClusterName is istiod's clusterName, MeshID the mesh config's,
	// Network the istio-system network label; RemoteSecrets every remote
	// secret's clusters with what their tokens may do.
	ClusterName        string                    `json:"clusterName,omitempty"`
	MeshID             string                    `json:"meshID,omitempty"`
	Network            string                    `json:"network,omitempty"`
	RemoteSecrets      []mesh.RemoteSecretStatus `json:"remoteSecrets,omitempty"`
	RemoteSecretsError string                    `json:"remoteSecretsError,omitempty"`

	gateway   *mesh.GatewayAddress
	entries   []mesh.Entry
	drs       []mesh.DestRule
	traffic   []mesh.TrafficRule
	dests     []mesh.RouteDestination
	records   []mesh.Record
	routeView mesh.RouteView
	cluster   *cli.Cluster
}

// LinkStatus is one linked pair's row.
type LinkStatus struct {
	From        string `json:"from"`
	To          string `json:"to"`
	Gateway     string `json:"gateway"`
	GatewayNow  string `json:"gatewayNow,omitempty"`
	Reachable   bool   `json:"reachable"`
	Error       string `json:"error,omitempty"`
	RootsMatch  *bool  `json:"rootsMatch,omitempty"`
	MultiPrimar bool   `json:"multiPrimary,omitempty"`
}

// Report is the whole status.
type Report struct {
	Clusters []*ClusterStatus `json:"clusters"`
	Links    []LinkStatus     `json:"links"`
	Problems []mesh.Problem   `json:"problems"`
	// Warnings need attention but do not fail status: remote secret
	// tokens expiring within 30 days, loopback servers.
	Warnings []mesh.Problem `json:"warnings,omitempty"`
	Routes   []mesh.Route   `json:"routes"`
}

// Run gathers, checks and prints; it returns an error when there are
// problems so that the exit code is 1.
func (o *StatusOptions) Run(ctx context.Context) error {
	contexts := o.Contexts
	explicit := len(contexts) > 0
	if !explicit {
		all, err := o.factory.Contexts()
		if err != nil {
			return err
		}
		contexts = all
	}
	if err := o.factory.CheckContexts(contexts...); err != nil {
		return err
	}
	rep := &Report{}
	for _, name := range contexts {
		cs, err := o.gather(ctx, name)
		if err != nil {
			if explicit {
				return fmt.Errorf("--contexts: %w", err)
			}
			continue // not a mesh cluster, or not reachable: not part of the default set
		}
		if cs != nil {
			rep.Clusters = append(rep.Clusters, cs)
		}
	}
	if len(rep.Clusters) == 0 {
		return errors.New("no context of the kubeconfig has a reachable cluster with namespace istio-system; pass --contexts")
	}
	o.check(ctx, rep)
	if err := o.print(rep); err != nil {
		return err
	}
	if n := len(rep.Problems); n > 0 {
		return fmt.Errorf("%d problem(s) found", n)
	}
	return nil
}

// cluster gives the clients of a context, with the timeout.
func (o *StatusOptions) cluster(name string) (*cli.Cluster, error) {
	if o.clusterFor != nil {
		return o.clusterFor(name)
	}
	c, err := o.factory.Cluster(name)
	if err != nil {
		return nil, err
	}
	c.Config.Timeout = o.Timeout
	return clusterWithTimeout(c, o.Timeout)
}

func (o *StatusOptions) gather(ctx context.Context, name string) (*ClusterStatus, error) {
	c, err := o.cluster(name)
	if err != nil {
		return nil, err
	}
	istioNS, err := c.Kube.CoreV1().Namespaces().Get(ctx, rules.IstioSystemNamespace, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: namespace istio-system: %w", name, err)
	}
	cs := &ClusterStatus{Context: name, cluster: c, Webhook: "not installed", Exported: []string{}}
	o.readMultiPrimary(ctx, cs, istioNS.Labels[mesh.NetworkLabel])
	if b, err := pki.ReadClusterBundle(ctx, c.Kube); err != nil {
		cs.CertsError = err.Error()
	} else {
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
	if ip, err := istioCoreDNS(ctx, c); err == nil {
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
	if addr, err := gateway.Discover(ctx, c.Kube, gateway.Options{}); err != nil {
		cs.GatewayError = err.Error()
	} else {
		cs.Gateway = addr.String()
		cs.gateway = &mesh.GatewayAddress{Host: addr.Host, Port: addr.Port}
	}
	cs.Webhook = webhookState(ctx, c)
	if err := cs.readMeshObjects(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := cs.readRouteObjects(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return cs, nil
}

func (cs *ClusterStatus) readMeshObjects(ctx context.Context) error {
	c := cs.cluster
	ses, err := c.Dynamic.Resource(rules.ServiceEntryGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list ServiceEntries: %w", err)
	}
	for i := range ses.Items {
		re := mesh.RouteEntryFrom(&ses.Items[i])
		e := re.Entry
		cs.entries = append(cs.entries, e)
		cs.routeView.Entries = append(cs.routeView.Entries, re)
		if e.Managed && e.Global() {
			cs.Exported = append(cs.Exported, e.Hosts[0])
		}
	}
	slices.Sort(cs.Exported)
	drs, err := c.Dynamic.Resource(rules.DestinationRuleGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list DestinationRules: %w", err)
	}
	for i := range drs.Items {
		cs.drs = append(cs.drs, mesh.DestRuleFrom(&drs.Items[i]))
		cs.traffic = append(cs.traffic, mesh.TrafficRuleFrom(&drs.Items[i]))
		cs.routeView.Rules = append(cs.routeView.Rules, mesh.TLSRuleFrom(&drs.Items[i]))
	}
	vss, err := c.Dynamic.Resource(rules.VirtualServiceGVR).List(ctx, metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("list VirtualServices: %w", err)
	}
	if err == nil {
		for i := range vss.Items {
			cs.dests = append(cs.dests, mesh.VirtualServiceDestinations(&vss.Items[i])...)
		}
	}
	cms, err := c.Kube.CoreV1().ConfigMaps(rules.MeshNamespace).List(ctx, metav1.ListOptions{LabelSelector: mesh.RecordLabel + "=" + mesh.RecordLink})
	if err != nil {
		return fmt.Errorf("list link records: %w", err)
	}
	for i := range cms.Items {
		if r, err := mesh.RecordFromConfigMap(&cms.Items[i]); err == nil {
			cs.records = append(cs.records, r)
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

func (o *StatusOptions) check(ctx context.Context, rep *Report) {
	byName := map[string]*ClusterStatus{}
	gateways := map[string]mesh.GatewayAddress{}
	var allRoots [][]string
	for _, cs := range rep.Clusters {
		byName[cs.Context] = cs
		if cs.gateway != nil {
			gateways[cs.Context] = *cs.gateway
		}
		if len(cs.RootFingerprints) > 0 {
			allRoots = append(allRoots, cs.RootFingerprints)
		}
	}
	for _, cs := range rep.Clusters {
		cs.RootsMatch = len(cs.RootFingerprints) > 0
		for _, other := range allRoots {
			cs.RootsMatch = cs.RootsMatch && sharedRoot(cs.RootFingerprints, other) != ""
		}
	}
	services := map[string]bool{}
	lookup := func(cluster, ns, name string) (bool, bool) {
		cs, ok := byName[cluster]
		if !ok {
			return false, false
		}
		key := cluster + "/" + ns + "/" + name
		if v, ok := services[key]; ok {
			return v, true
		}
		_, err := cs.cluster.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return false, false
		}
		services[key] = err == nil
		return err == nil, true
	}
	space := rules.DefaultVIPSpace()
	for _, cs := range rep.Clusters {
		rep.Problems = append(rep.Problems, mesh.CheckVIPs(cs.Context, cs.entries, space)...)
		rep.Problems = append(rep.Problems, mesh.CheckStale(cs.Context, cs.entries, lookup)...)
		rep.Problems = append(rep.Problems, mesh.CheckGateways(cs.Context, cs.entries, gateways)...)
		rep.Problems = append(rep.Problems, mesh.CheckSubsets(cs.Context, cs.entries, cs.drs)...)
		rep.Problems = append(rep.Problems, mesh.CheckRouteSubsets(cs.Context, cs.dests, cs.drs, cs.entries)...)
		rep.Problems = append(rep.Problems, mesh.CheckLocality(cs.Context, cs.traffic, cs.entries)...)
		for _, r := range cs.records {
			ls := o.linkStatus(ctx, cs, r, byName)
			rep.Links = append(rep.Links, ls)
			if r.Pending {
				rep.Problems = append(rep.Problems, mesh.Problem{Cluster: cs.Context, Kind: mesh.ProblemLinkIncomplete,
					Object:  "configmap " + rules.MeshNamespace + "/" + mesh.RecordName(r.Peer),
					Message: fmt.Sprintf("the link to %s did not finish (it failed or was interrupted); the record holds what it may have changed", r.Peer),
					Fix:     fmt.Sprintf("run kubectl mesh link --from %s --to %s again to finish it, or kubectl mesh unlink --from %s --to %s to undo it", cs.Context, r.Peer, cs.Context, r.Peer)})
			}
			if !ls.Reachable {
				rep.Problems = append(rep.Problems, mesh.Problem{Cluster: cs.Context, Kind: mesh.ProblemPeerUnreachable,
					Object:  "configmap " + rules.MeshNamespace + "/" + mesh.RecordName(r.Peer),
					Message: fmt.Sprintf("linked peer %s is unreachable: %s", r.Peer, ls.Error),
					Fix:     fmt.Sprintf("check the peer's API server and the kubeconfig context %q, or run kubectl mesh unlink --from %s --to %s", r.Peer, cs.Context, r.Peer)})
			}
		}
	}
	checkRoutes(rep)
	checkMultiPrimary(rep, time.Now())
	for _, cs := range rep.Clusters {
		if p, ok := checkGlobalDNS(cs); ok {
			rep.Problems = append(rep.Problems, p)
		}
	}
}

// checkGlobalDNS reports a cluster whose .global entries no DNS answers:
// apps then fail to resolve <name>.<ns>.global before any routing.
func checkGlobalDNS(cs *ClusterStatus) (mesh.Problem, bool) {
	if cs.GlobalDNS || cs.DNSError != "" {
		return mesh.Problem{}, false
	}
	for _, e := range cs.entries {
		if !e.Global() {
			continue
		}
		p := mesh.Problem{Cluster: cs.Context, Kind: mesh.ProblemNoGlobalDNS, Object: "serviceentry " + e.Ref()}
		if cs.IstioCoreDNS != "" {
			p.Message = fmt.Sprintf("%s does not forward the global zone to istiocoredns %s, so %s does not resolve", cs.DNSConfigMap, cs.IstioCoreDNS, e.Hosts[0])
			p.Fix = fmt.Sprintf("kubectl mesh link --from %s --to <a linked cluster>", cs.Context)
		} else {
			p.Message = fmt.Sprintf("no istiocoredns and Istio's DNS proxying is off, so %s does not resolve", e.Hosts[0])
			p.Fix = dnsCaptureHint(meshconfig.Namespace + "/" + meshconfig.ConfigMapName)
		}
		return p, true
	}
	return mesh.Problem{}, false
}

// linkStatus checks that a linked peer answers, within the timeout.
func (o *StatusOptions) linkStatus(ctx context.Context, cs *ClusterStatus, r mesh.Record, byName map[string]*ClusterStatus) LinkStatus {
	ls := LinkStatus{From: cs.Context, To: r.Peer, Gateway: r.Gateway, MultiPrimar: r.MultiPrimary != nil}
	if peer, ok := byName[r.Peer]; ok {
		ls.Reachable = true
		ls.GatewayNow = peer.Gateway
		m := sharedRoot(cs.RootFingerprints, peer.RootFingerprints) != ""
		ls.RootsMatch = &m
		return ls
	}
	known, err := o.factory.Contexts()
	if err != nil || !slices.Contains(known, r.Peer) {
		ls.Error = fmt.Sprintf("context %q is not in the kubeconfig", r.Peer)
		return ls
	}
	c, err := o.factory.Cluster(r.Peer)
	if err == nil {
		c, err = clusterWithTimeout(c, o.Timeout)
	}
	if err == nil {
		tctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		_, err = c.Kube.CoreV1().Namespaces().Get(tctx, rules.IstioSystemNamespace, metav1.GetOptions{})
	}
	if err != nil {
		ls.Error = err.Error()
		return ls
	}
	ls.Reachable = true
	return ls
}

func (o *StatusOptions) print(rep *Report) error {
	if o.Output == "json" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(o.Out, string(b))
		return err
	}
	w := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
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
	if len(rep.Links) > 0 {
		fmt.Fprintln(o.Out)
		w = tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "LINK\tGATEWAY\tGATEWAY NOW\tREACHABLE\tROOTS MATCH\tMULTI-PRIMARY")
		for _, l := range rep.Links {
			match := "unknown"
			if l.RootsMatch != nil {
				match = yesNo(*l.RootsMatch)
			}
			fmt.Fprintf(w, "%s -> %s\t%s\t%s\t%s\t%s\t%s\n", l.From, l.To, l.Gateway, orDash(l.GatewayNow), yesNo(l.Reachable), match, yesNo(l.MultiPrimar))
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if err := printMultiPrimary(o.Out, rep); err != nil {
		return err
	}
	if len(rep.Routes) > 0 {
		fmt.Fprintln(o.Out)
		if err := printRoutes(o.Out, rep.Routes); err != nil {
			return err
		}
	}
	if len(rep.Warnings) > 0 {
		fmt.Fprintln(o.Out)
		printProblems(o.Out, "WARNINGS", rep.Warnings)
	}
	fmt.Fprintln(o.Out)
	if len(rep.Problems) == 0 {
		_, err := fmt.Fprintln(o.Out, "No problems found.")
		return err
	}
	printProblems(o.Out, "PROBLEMS", rep.Problems)
	return nil
}

func printProblems(out io.Writer, title string, ps []mesh.Problem) {
	fmt.Fprintf(out, "%s (%d)\n", title, len(ps))
	for _, p := range ps {
		fmt.Fprintf(out, "- %s: %s [%s]: %s\n    fix: %s\n", p.Cluster, p.Object, p.Kind, p.Message, p.Fix)
	}
}

func dnsCell(cs *ClusterStatus) string {
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
