package status

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/dns"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/gateway"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/link"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/meshconfig"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// Webhook object names, as deploy/webhook installs them.
const webhookName = "mesh-webhook"

// ErrNoCluster is Gather's answer when none of the contexts it was given
// reaches a cluster with istio-system.
var ErrNoCluster = errors.New("no context of the kubeconfig has a reachable cluster with namespace istio-system")

// Request says what to report on.
type Request struct {
	// Contexts are the clusters to report on.
	Contexts []string
	// Explicit says the user named the contexts, so that one that cannot
	// be read is an error rather than left out of the report.
	Explicit bool
	// Timeout bounds every request to a cluster, a linked peer and a
	// remote secret's server, so that one that does not answer cannot
	// hang status.
	Timeout time.Duration
	// Now is when the report is made (expiries are checked against it);
	// zero means time.Now.
	Now time.Time
}

// gatherer fetches through a factory that has the request's timeout.
type gatherer struct {
	factory cli.Factory
	timeout time.Duration
}

// Gather fetches what every cluster of req holds, asks the linked peers
// that are not among them whether they answer, and checks it all with
// mesh.BuildReport. A context that cannot be read is left out, unless
// req.Explicit: then its error is returned.
func Gather(ctx context.Context, f cli.Factory, req Request) (*mesh.Report, error) {
	g := gatherer{factory: f.WithTimeout(req.Timeout), timeout: req.Timeout}
	var clusters []*mesh.ClusterFacts
	for _, name := range req.Contexts {
		facts, err := g.cluster(ctx, name)
		if err != nil {
			if req.Explicit {
				return nil, err
			}
			continue // not a mesh cluster, or not reachable: not part of the default set
		}
		clusters = append(clusters, facts)
	}
	if len(clusters) == 0 {
		return nil, ErrNoCluster
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	return mesh.BuildReport(clusters, g.peers(ctx, clusters), now), nil
}

// cluster reads everything the checks need of one cluster.
func (g gatherer) cluster(ctx context.Context, name string) (*mesh.ClusterFacts, error) {
	c, err := g.factory.Cluster(name)
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
	g.readMultiPrimary(ctx, c, cs, istioNS.Labels[mesh.NetworkLabel])
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

// readMeshObjects reads the ServiceEntries, DestinationRules,
// VirtualServices and link records the checks look at.
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

// peers asks each linked peer that is not among the reported clusters
// whether it answers, within the timeout; the map holds the error each
// gave (nil: it answered).
func (g gatherer) peers(ctx context.Context, clusters []*mesh.ClusterFacts) map[string]error {
	reported := map[string]bool{}
	for _, f := range clusters {
		reported[f.Status.Context] = true
	}
	peers := map[string]error{}
	for _, f := range clusters {
		for _, r := range f.Records {
			if _, asked := peers[r.Peer]; !asked && !reported[r.Peer] {
				peers[r.Peer] = g.askPeer(ctx, r.Peer)
			}
		}
	}
	return peers
}

func (g gatherer) askPeer(ctx context.Context, peer string) error {
	known, err := g.factory.Contexts()
	if err != nil || !slices.Contains(known, peer) {
		return fmt.Errorf("context %q is not in the kubeconfig", peer)
	}
	c, err := g.factory.Cluster(peer)
	if err != nil {
		return err
	}
	tctx, cancel := g.bounded(ctx)
	defer cancel()
	_, err = c.Kube.CoreV1().Namespaces().Get(tctx, rules.IstioSystemNamespace, metav1.GetOptions{})
	return err
}

// bounded is ctx with the request's timeout, when it has one: a peer or
// remote server that accepts the connection and then says nothing must
// not hang status.
func (g gatherer) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, g.timeout)
}
