package builders

import (
	"context"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/mutate"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/validate"
)

// webhookCases are the golden cases plus the variants whose output has no
// golden file: another cluster domain and a locality policy on every level.
func webhookCases() map[string]goldenCase {
	cases := goldenCases()
	corp := httpbin()
	corp.ClusterDomain = "corp.internal"
	cases["cluster domain"] = goldenCase{export: corp, local: Local{Name: "httpbin", Namespace: "bar", ClusterDomain: "corp.internal", Versions: []string{"v1"}, ExportedTo: []string{"cluster1"}}}
	failover := helloworld()
	failover.Ports = append(failover.Ports, Port{Name: "grpc", Number: 9000, Protocol: "GRPC"})
	failover.Locality = &LocalityPolicy{Failover: []Failover{{From: "region1", To: "region2"}}, Outlier: DefaultOutlier}
	failover.Sources[0].Locality, failover.Sources[1].Locality = "region3/zone1", "region2"
	cases["locality"] = goldenCase{export: failover, local: Local{Name: "helloworld", Namespace: "hello", Versions: []string{"v2"}, ExportedTo: []string{"cluster1"}, Locality: failover.Locality}}
	return cases
}

// TestWebhookAdmitsBuilderOutput sends every object the builders write
// (every golden file's, built from the same inputs TestGolden compares with
// it) through mesh-webhook's defaulting and validation with the default
// policy: none is refused and none would be rewritten. The CLI never writes
// what the webhook refuses or would change. The one documented exception
// is a source gateway reached on a node port: the default policy refuses
// exactly those endpoint ports (export warns), and a policy that allows the
// node port (allowedGatewayPorts) admits the entry.
func TestWebhookAdmitsBuilderOutput(t *testing.T) {
	cases := webhookCases()
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		if _, ok := cases[strings.TrimSuffix(filepath.Base(f), ".yaml")]; !ok {
			t.Errorf("%s has no case in goldenCases, so the webhook never sees what it holds", f)
		}
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			objs := tc.build(t)
			policy := rules.DefaultPolicy()
			var nodePorts []uint32
			for _, s := range tc.export.Sources {
				if s.GatewayPort != rules.GatewayPort {
					nodePorts = append(nodePorts, s.GatewayPort)
				}
			}
			if len(nodePorts) > 0 {
				refusesNodePorts(t, objs[0], policy, nodePorts)
				policy.AllowedGatewayPorts = append(policy.AllowedGatewayPorts, nodePorts...)
			}
			se := admitEntry(t, objs[0], policy)
			for _, dr := range objs[1:] {
				admitRule(t, dr, nil, policy) // the rule is written before its entry
				admitRule(t, dr, &se, policy)
			}
		})
	}
}

// wire is obj as an admission request carries it: JSON, numbers decoded as
// the webhook decodes them.
func wire(t *testing.T, obj *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	b, err := json.Marshal(obj.Object)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := utiljson.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

// admitEntry checks that defaulting changes nothing but a missing VIP (an
// entry without one is what a client-side dry run prints, and mesh-webhook
// allocates it) and that validation finds no error; it returns the entry as
// the webhook's index would know it.
func admitEntry(t *testing.T, built *unstructured.Unstructured, policy rules.Policy) rules.Entry {
	t.Helper()
	obj := wire(t, built)
	want := obj.DeepCopy()
	vip := netip.MustParseAddr("240.0.0.9")
	if len(Addresses(built)) == 0 {
		want.Object["spec"].(map[string]any)["addresses"] = []any{vip.String()}
	}
	res, err := mutate.Default(context.Background(), obj, policy, func(context.Context, string) (netip.Addr, error) { return vip, nil })
	if err != nil {
		t.Fatalf("mutate.Default(%s): %v", built.GetName(), err)
	}
	if res.Location || res.Resolution || res.EndpointPorts != 0 || !reflect.DeepEqual(obj.Object, want.Object) {
		t.Errorf("mesh-webhook would rewrite ServiceEntry %s (%+v):\n got %v\nwant %v", built.GetName(), res, obj.Object, want.Object)
	}
	errs, warnings := validate.ValidateServiceEntry(obj, policy, nil)
	if len(errs) > 0 {
		t.Errorf("mesh-webhook refuses ServiceEntry %s: %v\n%v", built.GetName(), errs, obj.Object)
	}
	for _, w := range warnings {
		t.Logf("ServiceEntry %s: warning %s", built.GetName(), w)
	}
	return rules.ReadServiceEntry(obj.Object).Entry()
}

// refusesNodePorts checks that the only errors the policy finds in the
// entry are endpoint ports set to one of nodePorts, the gateway ports the
// policy does not allow.
func refusesNodePorts(t *testing.T, built *unstructured.Unstructured, policy rules.Policy, nodePorts []uint32) {
	t.Helper()
	errs, _ := validate.ValidateServiceEntry(wire(t, built), policy, nil)
	if len(errs) == 0 {
		t.Errorf("ServiceEntry %s maps ports to node ports %v, which the default policy does not allow, yet it is admitted", built.GetName(), nodePorts)
	}
	for _, e := range errs {
		n, _ := rules.PortNumber(e.BadValue)
		if e.Type != field.ErrorTypeNotSupported || !strings.HasPrefix(e.Field, "spec.endpoints[") || !slices.Contains(nodePorts, n) {
			t.Errorf("ServiceEntry %s: %v; want only the node ports %v refused", built.GetName(), e, nodePorts)
		}
	}
}

// admitRule checks that defaulting leaves a DestinationRule as it is and
// that validation finds no error, with and without its entry known.
func admitRule(t *testing.T, built *unstructured.Unstructured, entry *rules.Entry, policy rules.Policy) {
	t.Helper()
	obj := wire(t, built)
	want := obj.DeepCopy()
	if res := mutate.DefaultDestinationRule(obj, entry, policy.Suffix); res.Changed() || !reflect.DeepEqual(obj.Object, want.Object) {
		t.Errorf("mesh-webhook would rewrite DestinationRule %s (entry %v, %+v):\n got %v\nwant %v", built.GetName(), entry, res, obj.Object, want.Object)
	}
	errs, _ := validate.ValidateDestinationRule(obj, entry, policy)
	if len(errs) > 0 {
		t.Errorf("mesh-webhook refuses DestinationRule %s (entry %v): %v\n%v", built.GetName(), entry, errs, obj.Object)
	}
}
