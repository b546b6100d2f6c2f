package route

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli/clitest"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/routing"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

const (
	// What export writes into cluster1 for helloworld's v2 and v3 in
	// cluster2.
	globalRule = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: helloworld-hello-global
  namespace: hello
  labels: {app.kubernetes.io/managed-by: kubectl-mesh}
spec:
  host: helloworld.hello.global
  subsets:
  - {name: v2, labels: {cluster: cluster2}}
  - {name: v3, labels: {cluster: cluster2}}
`
	userVirtualService = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: helloworld-hello-route, namespace: hello}
spec:
  hosts: [helloworld.hello.svc.cluster.local]
`
	userLocalRule = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: helloworld, namespace: hello}
spec:
  host: helloworld
  subsets:
  - {name: v1, labels: {version: v1}}
`
)

// cluster1 runs helloworld v1 and holds the Istio objects docs.
func cluster1(t *testing.T, docs ...string) *clitest.Cluster {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "helloworld", Namespace: "hello"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "helloworld"}},
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "helloworld-v1", Namespace: "hello", Labels: map[string]string{"app": "helloworld", "version": "v1"}}}
	return clitest.NewCluster("cluster1", svc, pod).Load(t, docs...)
}

func router(t *testing.T, c *clitest.Cluster) (Router, *bytes.Buffer) {
	var warnings bytes.Buffer
	return Router{Factory: clitest.Clusters{c}.Factory(t), Warnings: &warnings}, &warnings
}

// jason is the README's request: jason's requests to v2 and v3 (exported
// from cluster2), everyone else to v1 (local).
func jason(dry cli.DryRun) Request {
	m, _ := routing.ParseWhen("header:end-user=jason")
	return Request{
		Service: "helloworld", Namespace: "hello", Context: "cluster1",
		Weights: []routing.Weight{{Version: "v2", Weight: 70}, {Version: "v3", Weight: 30}},
		Match:   &m, When: "header:end-user=jason", Otherwise: "v1",
		VersionLabel: builders.DefaultVersionLabel, DryRun: dry,
	}
}

func TestVersions(t *testing.T) {
	tests := map[string]struct {
		dry         cli.DryRun
		wantActions []cli.Action // VirtualService, then local DestinationRule
		wantDryAll  bool         // every write marked dryRun=All
		wantWrites  int
	}{
		"none":   {dry: cli.DryRunNone, wantActions: []cli.Action{cli.Created, cli.Created}, wantWrites: 2},
		"client": {dry: cli.DryRunClient, wantActions: []cli.Action{cli.Planned, cli.Planned}},
		"server": {dry: cli.DryRunServer, wantActions: []cli.Action{cli.Created, cli.Created}, wantWrites: 2, wantDryAll: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := cluster1(t, globalRule)
			r, _ := router(t, c)
			rows, err := r.Run(t.Context(), jason(tc.dry))
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 2 || rows[0].Kind != rules.KindVirtualService || rows[1].Kind != rules.KindDestinationRule {
				t.Fatalf("rows = %+v, want the VirtualService and the local DestinationRule", rows)
			}
			for i, want := range tc.wantActions {
				if rows[i].Action != want || rows[i].Err != nil {
					t.Errorf("row %d = %s, %v; want %s", i, rows[i].Action, rows[i].Err, want)
				}
			}
			http := routing.HTTPRules(rows[0].Object)
			if len(http) != 2 || !strings.Contains(fmt.Sprint(http[0]), "helloworld.hello.global") || !strings.Contains(fmt.Sprint(http[1]), "helloworld.hello.svc.cluster.local") {
				t.Errorf("VirtualService routes = %v, want jason's to the .global subsets, then the default to the local v1", http)
			}
			if got := builders.SubsetNames(rows[1].Object); !slices.Equal(got, []string{"v1"}) {
				t.Errorf("local DestinationRule subsets = %v, want [v1]", got)
			}
			sent := c.Writes()
			if len(sent) != tc.wantWrites {
				t.Fatalf("sent %v, want %d writes", sent, tc.wantWrites)
			}
			for _, a := range sent {
				o := a.(k8stesting.CreateActionImpl).GetCreateOptions()
				if (len(o.DryRun) == 1 && o.DryRun[0] == metav1.DryRunAll) != tc.wantDryAll {
					t.Errorf("create %s with dryRun %v", a.GetResource().Resource, o.DryRun)
				}
			}
		})
	}
}

func TestVersionsRefusals(t *testing.T) {
	tests := map[string]struct {
		docs    []string
		req     func(Request) Request
		wantErr string
	}{
		"a version found nowhere": {
			docs:    []string{globalRule},
			req:     func(r Request) Request { r.Otherwise = "v9"; return r },
			wantErr: "--otherwise: version v9 of hello/helloworld: no Pod of Service hello/helloworld in cluster1 has version=v9 (it runs: v1), and no export into cluster1 provides it (DestinationRule hello/helloworld-hello-global has subsets: v2, v3)",
		},
		"a VirtualService the user owns": {
			docs:    []string{globalRule, userVirtualService},
			req:     func(r Request) Request { return r },
			wantErr: "VirtualService hello/helloworld-hello-route exists and is not managed by kubectl-mesh",
		},
		"removing a rule that is not there": {
			req:     func(r Request) Request { r.Remove, r.Weights, r.Otherwise = true, nil, ""; return r },
			wantErr: "has no rule --when header:end-user=jason (its rules: none)",
		},
		"an unknown context": {
			req:     func(r Request) Request { r.Context = "cluster9"; return r },
			wantErr: `--context: context "cluster9" is not in the kubeconfig`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := cluster1(t, tc.docs...)
			r, _ := router(t, c)
			rows, err := r.Run(t.Context(), tc.req(jason(cli.DryRunNone)))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Run = %+v, %v; want an error with %q", rows, err, tc.wantErr)
			}
			if sent := c.Writes(); len(sent) != 0 {
				t.Errorf("a refused request sent %v", sent)
			}
		})
	}
}

func TestVersionsRemove(t *testing.T) {
	c := cluster1(t, globalRule)
	r, _ := router(t, c)
	req := Request{Service: "helloworld", Namespace: "hello", Context: "cluster1", Remove: true}
	if rows, err := r.Run(t.Context(), req); err != nil || len(rows) != 1 || rows[0].Action != cli.NotFound {
		t.Fatalf("remove without a VirtualService = %+v, %v; want one row, not found", rows, err)
	}
	if _, err := r.Run(t.Context(), jason(cli.DryRunNone)); err != nil {
		t.Fatal(err)
	}
	c.Reset()
	rows, err := r.Run(t.Context(), req)
	if err != nil || len(rows) != 1 || rows[0].Action != cli.Deleted || rows[0].Err != nil {
		t.Fatalf("remove = %+v, %v; want the VirtualService deleted", rows, err)
	}
	if sent := c.Writes(); len(sent) != 1 || sent[0].GetVerb() != "delete" {
		t.Errorf("remove sent %v, want one delete", sent)
	}
}

func TestVersionsUserRule(t *testing.T) {
	c := cluster1(t, globalRule, userLocalRule)
	r, warnings := router(t, c)
	req := jason(cli.DryRunNone)
	req.Otherwise = ""
	req.Match = nil
	req.Weights = []routing.Weight{{Version: "v1", Weight: 100}}
	rows, err := r.Run(t.Context(), req)
	if err != nil || len(rows) != 1 || rows[0].Kind != rules.KindVirtualService {
		t.Fatalf("rows = %+v, %v; want only the VirtualService: the user's rule is left alone", rows, err)
	}
	if warnings.Len() != 0 {
		t.Errorf("the user's rule defines v1, yet: %s", warnings)
	}
	req.Weights = []routing.Weight{{Version: "v1", Weight: 50}, {Version: "v2", Weight: 50}}
	if _, err := r.Run(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if warnings.Len() != 0 {
		t.Errorf("v2 goes to the .global host, the user's rule need not define it: %s", warnings)
	}
	for _, a := range c.Writes() {
		if a.GetResource() == rules.DestinationRuleGVR {
			t.Errorf("route wrote a DestinationRule beside the user's: %v", a)
		}
	}
}

func TestLocality(t *testing.T) {
	policy := &builders.LocalityPolicy{
		Failover: []builders.Failover{{From: "region1", To: "region2"}},
		Outlier:  builders.Outlier{Consecutive5xxErrors: 5, Interval: 10 * time.Second, BaseEjectionTime: 30 * time.Second},
	}
	tests := map[string]struct {
		docs        []string
		host        string
		contexts    []string
		wantActions []cli.Action
		wantErr     []string // per row, "" for none
		wantWarning string
	}{
		"local rule written": {
			host: "local", wantActions: []cli.Action{cli.Created}, wantErr: []string{""},
		},
		"the user's local rule is left alone": {
			docs: []string{userLocalRule}, host: "local",
			wantActions: []cli.Action{cli.Skipped + " (not managed by kubectl-mesh)"}, wantErr: []string{""},
			wantWarning: "DestinationRule hello/helloworld for helloworld.hello.svc.cluster.local is not managed by kubectl-mesh and was left alone; set on its spec.trafficPolicy: loadBalancer: {localityLbSetting: {failover: [{from: region1, to: region2}]}}",
		},
		"no export for the .global rule": {
			host: "global", wantActions: []cli.Action{cli.Failed}, wantErr: []string{"no export of hello/helloworld into cluster1"},
		},
		"each cluster on its own": {
			host: "local", contexts: []string{"cluster1", "cluster9"},
			wantActions: []cli.Action{cli.Created, cli.Failed}, wantErr: []string{"", `--contexts: context "cluster9"`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := cluster1(t, tc.docs...)
			r, warnings := router(t, c)
			rows, err := r.Run(t.Context(), Request{Service: "helloworld", Namespace: "hello", Context: "cluster1", Contexts: tc.contexts, Policy: policy, Host: tc.host})
			if err != nil || len(rows) != len(tc.wantActions) {
				t.Fatalf("rows = %+v, %v; want %d", rows, err, len(tc.wantActions))
			}
			for i, r := range rows {
				if r.Action != tc.wantActions[i] {
					t.Errorf("row %d action = %q, want %q", i, r.Action, tc.wantActions[i])
				}
				if w := tc.wantErr[i]; (w == "") != (r.Err == nil) || (w != "" && !strings.Contains(r.Err.Error(), w)) {
					t.Errorf("row %d error = %v, want %q", i, r.Err, w)
				}
			}
			if !strings.Contains(warnings.String(), tc.wantWarning) || (tc.wantWarning == "") != (warnings.Len() == 0) {
				t.Errorf("warnings = %q, want %q", warnings, tc.wantWarning)
			}
			if tc.wantActions[0] == cli.Created {
				lb, _, _ := unstructured.NestedMap(rows[0].Object.Object, "spec", "trafficPolicy", "loadBalancer", "localityLbSetting")
				if lb == nil {
					t.Errorf("the local rule written has no locality policy: %v", rows[0].Object.Object)
				}
			}
		})
	}
}

// commit refuses nothing itself: a delete of an object that is not ours
// fails in the Writer, and the row carries it.
func TestCommitRowCarriesError(t *testing.T) {
	c := cluster1(t)
	vs := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(userVirtualService), &vs.Object); err != nil {
		t.Fatal(err)
	}
	row := commit(t.Context(), cli.Writer{Dynamic: c.Dynamic}, change{gvr: rules.VirtualServiceGVR, existing: vs, remove: true})
	if !errors.Is(row.Err, cli.ErrNotManaged) {
		t.Fatalf("commit(delete of a user's object) = %+v, want ErrNotManaged", row)
	}
}

func TestVersionsUserRuleLacksSubset(t *testing.T) {
	bare := strings.Replace(userLocalRule, "  subsets:\n  - {name: v1, labels: {version: v1}}\n", "", 1)
	c := cluster1(t, globalRule, bare)
	r, warnings := router(t, c)
	req := jason(cli.DryRunClient)
	if _, err := r.Run(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if want := "DestinationRule hello/helloworld for helloworld is not managed by kubectl-mesh and was left alone; it must define subsets v1 (each selecting the Pods' version label); missing now: v1"; !strings.Contains(warnings.String(), want) {
		t.Errorf("warnings = %q, want %q", warnings, want)
	}
}
