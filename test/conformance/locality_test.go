package conformance

// Locality load balancing of a .global host (issue 11, DESIGN.md §1.7):
// helloworld.hello.global has three sources in three regions (cluster2,
// cluster4, cluster5: export sets each endpoint's locality from the
// source's nodes, region-<cluster>). `kubectl mesh route --failover` and
// `--distribute` write the policy on the caller's .global DestinationRule;
// pilot must turn it into priorities and weights of the caller's load
// assignment, relative to the caller's locality.

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"istio.io/istio/pilot/pkg/model"
)

// The caller sits in cluster2's region: the failover rule is written for
// callers there (region-cluster2=region-cluster5), and so is the
// distribution (region-cluster2/*).
const callerLocality = "region-cluster2"

// placement is where locality load balancing puts one endpoint of a
// cluster's load assignment: its LocalityLbEndpoints' locality, priority
// and load balancing weight (pilot's default: the number of endpoints of
// the locality, here 1).
type placement struct {
	locality string
	priority uint32
	weight   uint32
}

func (p placement) String() string {
	return fmt.Sprintf("%s priority %d weight %d", p.locality, p.priority, p.weight)
}

// lbView is a caller cluster's locality load balancing.
type lbView struct {
	typ              clusterv3.Cluster_DiscoveryType
	outlierDetection string // "" when none
	localityWeighted bool   // common_lb_config.locality_weighted_lb_config set
	// by source lab cluster (the gateway the endpoint is), else by address
	endpoints map[string]placement
}

func (v lbView) String() string {
	var eps []string
	for _, k := range slices.Sorted(maps.Keys(v.endpoints)) {
		eps = append(eps, k+": "+v.endpoints[k].String())
	}
	return fmt.Sprintf("%s, outlier detection {%s}, locality weighted %v, endpoints {%s}", v.typ, v.outlierDetection, v.localityWeighted, strings.Join(eps, "; "))
}

// gatewayOwners maps every gateway address of the lab (HOST:PORT) to its
// cluster. Only the clusters' objects are read, no pilot is built.
func gatewayOwners(sc *scenario) map[string]string {
	objs := map[string]*pilot{}
	for name, c := range sc.clusters {
		objs[name] = &pilot{clusterObjects: c}
	}
	out := map[string]string{}
	for addr, gws := range gatewaysByAddress(objs) {
		if len(gws) == 1 {
			out[addr] = gws[0].src.name
		}
	}
	return out
}

// lbViewOf reads the cluster's inline load assignment (the .global
// clusters are STRICT_DNS).
func lbViewOf(cl *clusterv3.Cluster, owners map[string]string) lbView {
	v := lbView{typ: cl.GetType(), endpoints: map[string]placement{}}
	if od := cl.GetOutlierDetection(); od != nil {
		v.outlierDetection = fmt.Sprintf("consecutive 5xx %d, interval %s, base ejection %s",
			od.GetConsecutive_5Xx().GetValue(), od.GetInterval().AsDuration(), od.GetBaseEjectionTime().AsDuration())
	}
	v.localityWeighted = cl.GetCommonLbConfig().GetLocalityWeightedLbConfig() != nil
	for _, lle := range cl.GetLoadAssignment().GetEndpoints() {
		loc := lle.GetLocality()
		l := loc.GetRegion()
		for _, part := range []string{loc.GetZone(), loc.GetSubZone()} {
			if part != "" {
				l += "/" + part
			}
		}
		for _, lb := range lle.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			addr := net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
			key := addr
			if o, ok := owners[addr]; ok {
				key = o
			}
			v.endpoints[key] = placement{locality: l, priority: lle.GetPriority(), weight: lle.GetLoadBalancingWeight().GetValue()}
		}
	}
	return v
}

// The outlier detection route writes by default (the seed guide's).
const wantOutlier = "consecutive 5xx 1, interval 1s, base ejection 1m0s"

// lbCase is one caller cluster's expected locality load balancing, per
// subset of the .global host ("" the whole service): lab cluster → where
// its endpoint is placed.
type lbCase struct {
	outlierDetection string
	localityWeighted bool
	endpoints        map[string]map[string]placement
}

// checkLocality compares the caller's .global helloworld clusters with
// want, for the caller sidecar in namespace hello placed in locality.
func checkLocality(t *testing.T, caller *pilot, owners map[string]string, locality string, want lbCase) {
	t.Helper()
	pod := caller.sidecarPod("hello")
	if pod == nil {
		t.Fatalf("%s: no sidecar in namespace hello", caller.name)
	}
	proxy := caller.proxyIn(pod, model.SidecarProxy, locality)
	clusters := caller.s.Clusters(proxy)
	for _, subset := range slices.Sorted(maps.Keys(want.endpoints)) {
		cname := fmt.Sprintf("outbound|5000|%s|%s", subset, seedGlobal)
		cl := clusterByName(clusters, cname)
		if cl == nil {
			t.Errorf("%s: sidecar %s/%s in %q: no cluster %s", caller.name, pod.Namespace, pod.Name, locality, cname)
			continue
		}
		got := lbViewOf(cl, owners)
		w := lbView{typ: clusterv3.Cluster_STRICT_DNS, outlierDetection: want.outlierDetection, localityWeighted: want.localityWeighted, endpoints: want.endpoints[subset]}
		if got.String() != w.String() {
			t.Errorf("%s: sidecar %s/%s in %q, cluster %s:\n  pilot generated %s\n  want            %s", caller.name, pod.Namespace, pod.Name, locality, cname, got, w)
		} else {
			t.Logf("%s: %s", cname, got)
		}
	}
}

// at places one source's endpoint.
func at(region string, priority, weight uint32) placement {
	return placement{locality: region, priority: priority, weight: weight}
}

// TestLocalityFailover: with --failover region-cluster2=region-cluster5, a
// caller in region-cluster2 gets cluster2's gateway first (same region),
// cluster5's next (the failover rule), cluster4's last; the mesh's default
// would put cluster4 and cluster5 side by side — the cases marked "pinned"
// are facts of pilot that the product's policy rests on.
func TestLocalityFailover(t *testing.T) {
	sc := needScenario(t)
	owners := gatewayOwners(sc)
	// Subsets have one source each: one endpoint, always the first
	// priority; what they show is whether the policy reached them.
	subsets := func(whole map[string]placement, v2, v5, v6 placement) map[string]map[string]placement {
		return map[string]map[string]placement{"": whole, "v2": {"cluster2": v2}, "v3": {"cluster2": v2}, "v5": {"cluster4": v5}, "v6": {"cluster5": v6}}
	}
	r2, r4, r5 := "region-cluster2", "region-cluster4", "region-cluster5"
	cases := []struct {
		name     string
		edit     func(t *testing.T, c *clusterObjects) // nil: as the product wrote it
		locality string
		want     lbCase
	}{{
		name:     "as written by --failover",
		locality: callerLocality,
		want: lbCase{outlierDetection: wantOutlier, localityWeighted: true, endpoints: subsets(
			map[string]placement{"cluster2": at(r2, 0, 1), "cluster5": at(r5, 1, 1), "cluster4": at(r4, 2, 1)},
			at(r2, 0, 1), at(r4, 0, 1), at(r5, 0, 1))},
	}, {
		name:     "pinned: the rule applies to callers of its region only (caller in region-cluster5: default order)",
		locality: "region-cluster5",
		want: lbCase{outlierDetection: wantOutlier, localityWeighted: true, endpoints: subsets(
			map[string]placement{"cluster5": at(r5, 0, 1), "cluster2": at(r2, 1, 1), "cluster4": at(r4, 1, 1)},
			at(r2, 0, 1), at(r4, 0, 1), at(r5, 0, 1))},
	}, {
		name:     "pinned: a caller without locality gets every endpoint at priority 0",
		locality: "",
		want: lbCase{outlierDetection: wantOutlier, localityWeighted: true, endpoints: subsets(
			map[string]placement{"cluster2": at(r2, 0, 1), "cluster5": at(r5, 0, 1), "cluster4": at(r4, 0, 1)},
			at(r2, 0, 1), at(r4, 0, 1), at(r5, 0, 1))},
	}, {
		name:     "pinned: without localityLbSetting, outlier detection alone puts both other regions at priority 1",
		edit:     func(t *testing.T, c *clusterObjects) { editGlobalPolicies(t, c, true, dropLocalityLbSetting) },
		locality: callerLocality,
		want: lbCase{outlierDetection: wantOutlier, localityWeighted: false, endpoints: subsets(
			map[string]placement{"cluster2": at(r2, 0, 1), "cluster5": at(r5, 1, 1), "cluster4": at(r4, 1, 1)},
			at(r2, 0, 1), at(r4, 0, 1), at(r5, 0, 1))},
	}, {
		name:     "pinned: the policy only on the rule, not its port-level settings, is dropped",
		edit:     func(t *testing.T, c *clusterObjects) { editGlobalPolicies(t, c, false, dropPolicy) },
		locality: callerLocality,
		want: lbCase{outlierDetection: "", localityWeighted: false, endpoints: subsets(
			map[string]placement{"cluster2": at(r2, 0, 1), "cluster5": at(r5, 0, 1), "cluster4": at(r4, 0, 1)},
			at(r2, 0, 1), at(r4, 0, 1), at(r5, 0, 1))},
	}}
	var written *pilot
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p *pilot
			switch {
			case tc.edit != nil:
				c := sc.afterFailover.deepCopy()
				tc.edit(t, c)
				p = newPilot(t, c)
			case written == nil:
				written = newPilot(t, sc.afterFailover)
				p = written
			default:
				p = written
			}
			checkLocality(t, p, owners, tc.locality, tc.want)
		})
	}
}

// TestLocalityDistribute: --distribute, run after --failover, replaces it;
// a caller in region-cluster2 gets the given locality weights, 80/10/10.
func TestLocalityDistribute(t *testing.T) {
	sc := needScenario(t)
	owners := gatewayOwners(sc)
	// Istio refuses failover and distribute together, and pilot would
	// apply the distribution alone, so only the rule shows that
	// --distribute replaced the failover: on every level.
	rules := globalRules(sc.clusters[callerCluster])
	if len(rules) == 0 {
		t.Fatalf("%s: no DestinationRule for %s", callerCluster, seedGlobal)
	}
	for _, u := range rules {
		levels := policyLevels(u)
		t.Logf("%s: DestinationRule %s/%s: %d traffic policies (rule, subsets, port-level settings)", callerCluster, u.GetNamespace(), u.GetName(), len(levels))
		for i, tp := range levels {
			lb, _, _ := unstructured.NestedMap(tp, "loadBalancer", "localityLbSetting")
			_, hasOD := tp["outlierDetection"]
			if lb["failover"] != nil || lb["distribute"] == nil || !hasOD {
				b, _ := json.Marshal(tp)
				t.Errorf("%s: DestinationRule %s/%s, traffic policy %d of %d: want distribute and outlier detection, no failover; it is %s", callerCluster, u.GetNamespace(), u.GetName(), i+1, len(levels), b)
			}
		}
	}
	r2, r4, r5 := "region-cluster2", "region-cluster4", "region-cluster5"
	subsets := func(whole map[string]placement, v2, v5, v6 placement) map[string]map[string]placement {
		return map[string]map[string]placement{"": whole, "v2": {"cluster2": v2}, "v3": {"cluster2": v2}, "v5": {"cluster4": v5}, "v6": {"cluster5": v6}}
	}
	cases := []struct {
		name     string
		edit     func(t *testing.T, c *clusterObjects)
		locality string
		want     lbCase
	}{{
		name:     "as written by --distribute",
		locality: callerLocality,
		want: lbCase{outlierDetection: wantOutlier, localityWeighted: true, endpoints: subsets(
			map[string]placement{"cluster2": at(r2, 0, 80), "cluster4": at(r4, 0, 10), "cluster5": at(r5, 0, 10)},
			at(r2, 0, 80), at(r4, 0, 10), at(r5, 0, 10))},
	}, {
		name:     "pinned: a caller of another region keeps pilot's weights",
		locality: "region-cluster4",
		want: lbCase{outlierDetection: wantOutlier, localityWeighted: true, endpoints: subsets(
			map[string]placement{"cluster2": at(r2, 0, 1), "cluster4": at(r4, 0, 1), "cluster5": at(r5, 0, 1)},
			at(r2, 0, 1), at(r4, 0, 1), at(r5, 0, 1))},
	}, {
		name:     "pinned: the policy only on the rule, not its port-level settings, is dropped",
		edit:     func(t *testing.T, c *clusterObjects) { editGlobalPolicies(t, c, false, dropPolicy) },
		locality: callerLocality,
		want: lbCase{outlierDetection: "", localityWeighted: false, endpoints: subsets(
			map[string]placement{"cluster2": at(r2, 0, 1), "cluster4": at(r4, 0, 1), "cluster5": at(r5, 0, 1)},
			at(r2, 0, 1), at(r4, 0, 1), at(r5, 0, 1))},
	}}
	var written *pilot
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p *pilot
			switch {
			case tc.edit != nil:
				c := sc.clusters[callerCluster].deepCopy()
				tc.edit(t, c)
				p = newPilot(t, c)
			case written == nil:
				written = newPilot(t, sc.clusters[callerCluster])
				p = written
			default:
				p = written
			}
			checkLocality(t, p, owners, tc.locality, tc.want)
		})
	}
}

// dropLocalityLbSetting removes the localityLbSetting of a traffic policy,
// keeping its outlier detection.
func dropLocalityLbSetting(policy map[string]any) bool {
	lb, ok := policy["loadBalancer"].(map[string]any)
	if !ok {
		return false
	}
	if _, ok := lb["localityLbSetting"]; !ok {
		return false
	}
	delete(lb, "localityLbSetting")
	if len(lb) == 0 {
		delete(policy, "loadBalancer")
	}
	return true
}

// dropPolicy removes the load balancer and outlier detection of a traffic
// policy, as on a port-level setting that carries only the SNI (what an
// older, hand-written .global rule has).
func dropPolicy(policy map[string]any) bool {
	_, lb := policy["loadBalancer"]
	_, od := policy["outlierDetection"]
	delete(policy, "loadBalancer")
	delete(policy, "outlierDetection")
	return lb || od
}

// editGlobalPolicies applies edit to the traffic policies of the caller's
// .global helloworld DestinationRule: every port-level setting (of the
// rule and of its subsets), and with rules also the rule's and the
// subsets' own. It fails the test if edit changed nothing.
func editGlobalPolicies(t *testing.T, c *clusterObjects, rules bool, edit func(policy map[string]any) bool) {
	t.Helper()
	changed := 0
	for _, u := range globalRules(c) {
		for _, tp := range policyLevels(u) {
			if _, isPortLevel := tp["port"]; (rules || isPortLevel) && edit(tp) {
				changed++
			}
		}
	}
	if changed == 0 {
		t.Fatalf("%s: nothing to edit in the DestinationRule of %s", c.name, seedGlobal)
	}
}

// globalRules are the caller's DestinationRules for the .global helloworld.
func globalRules(c *clusterObjects) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range c.istioOfKind("DestinationRule") {
		if h, _, _ := unstructured.NestedString(u.Object, "spec", "host"); h == seedGlobal {
			out = append(out, u)
		}
	}
	return out
}

// policyLevels are the traffic policies of a DestinationRule, to edit in
// place: the rule's, each of its port-level settings, each subset's and
// each of their port-level settings.
func policyLevels(u *unstructured.Unstructured) []map[string]any {
	var rules []map[string]any
	if tp, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "trafficPolicy"); ok {
		if tp, ok := tp.(map[string]any); ok {
			rules = append(rules, tp)
		}
	}
	subsets, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "subsets")
	for _, s := range asSlice(subsets) {
		if tp, ok := s["trafficPolicy"].(map[string]any); ok {
			rules = append(rules, tp)
		}
	}
	var out []map[string]any
	for _, tp := range rules {
		out = append(out, tp)
		out = append(out, asSlice(tp["portLevelSettings"])...)
	}
	return out
}
