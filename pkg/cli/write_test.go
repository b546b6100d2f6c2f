package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli/clitest"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

var cmGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

func configMap(data string, managed bool) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "cm", "namespace": "ns", "uid": "u1", "resourceVersion": "7"},
		"spec":     map[string]any{"data": data},
	}}
	if managed {
		u.SetLabels(map[string]string{rules.ManagedByLabel: rules.ManagedByValue})
	}
	return u
}

// fakeWriter is a cli.Writer on a fake cluster holding objs.
func fakeWriter(d cli.DryRun, objs ...runtime.Object) (cli.Writer, *clitest.Cluster) {
	c := clitest.NewCluster("c1", objs...)
	return cli.Writer{Dynamic: c.Dynamic, DryRun: d}, c
}

func TestWriterPut(t *testing.T) {
	tests := map[string]struct {
		dry        cli.DryRun
		existing   *unstructured.Unstructured
		desired    *unstructured.Unstructured
		wantAction cli.Action
		wantErr    error
		wantVerb   string // "" = no write sent
		check      func(t *testing.T, a k8stesting.Action)
	}{
		"absent: a create": {
			existing: nil, desired: configMap("a", true), wantAction: cli.Created, wantVerb: "create",
			check: func(t *testing.T, a k8stesting.Action) {
				if o := a.(k8stesting.CreateActionImpl).GetCreateOptions(); o.FieldManager != rules.FieldManager || len(o.DryRun) != 0 {
					t.Errorf("create options %+v", o)
				}
			},
		},
		"managed, different: apply forced, preconditioned on the version read": {
			existing: configMap("a", true), desired: configMap("b", true), wantAction: cli.Configured, wantVerb: "patch",
			check: func(t *testing.T, a k8stesting.Action) {
				p := a.(k8stesting.PatchActionImpl)
				o := p.GetPatchOptions()
				if o.Force == nil || !*o.Force || o.FieldManager != rules.FieldManager {
					t.Errorf("apply options %+v, want forced under %s", o, rules.FieldManager)
				}
				if !strings.Contains(string(p.GetPatch()), `"resourceVersion":"7"`) {
					t.Errorf("apply %s carries no resourceVersion precondition", p.GetPatch())
				}
			},
		},
		"managed, same: nothing sent": {
			existing: configMap("a", true), desired: configMap("a", true), wantAction: cli.Unchanged,
		},
		"not ours: refused, nothing sent": {
			existing: configMap("a", false), desired: configMap("b", true), wantAction: cli.Skipped, wantErr: cli.ErrNotManaged,
		},
		"client dry run: the action, nothing sent": {
			dry: cli.DryRunClient, existing: configMap("a", true), desired: configMap("b", true), wantAction: cli.Configured,
		},
		"server dry run: sent marked dry": {
			dry: cli.DryRunServer, existing: nil, desired: configMap("b", true), wantAction: cli.Created, wantVerb: "create",
			check: func(t *testing.T, a k8stesting.Action) {
				if o := a.(k8stesting.CreateActionImpl).GetCreateOptions(); len(o.DryRun) != 1 || o.DryRun[0] != metav1.DryRunAll {
					t.Errorf("create options %+v, want dryRun All", o)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w, c := fakeWriter(tc.dry)
			_, action, err := w.Put(context.Background(), cmGVR, tc.existing, tc.desired)
			if !errors.Is(err, tc.wantErr) || action != tc.wantAction {
				t.Fatalf("Put = %q, %v; want %q, %v", action, err, tc.wantAction, tc.wantErr)
			}
			sent := c.Writes()
			if tc.wantVerb == "" {
				if len(sent) != 0 {
					t.Fatalf("sent %v, want nothing", sent)
				}
				return
			}
			if len(sent) != 1 || sent[0].GetVerb() != tc.wantVerb {
				t.Fatalf("sent %v, want one %s", sent, tc.wantVerb)
			}
			if tc.check != nil {
				tc.check(t, sent[0])
			}
		})
	}
}

// Apply forces ownership only of objects kubectl-mesh manages.
func TestWriterApplyForcesOnlyOurs(t *testing.T) {
	for name, tc := range map[string]struct {
		existing  *unstructured.Unstructured
		wantForce bool
	}{
		"absent":   {nil, true},
		"ours":     {configMap("a", true), true},
		"not ours": {configMap("a", false), false},
	} {
		t.Run(name, func(t *testing.T) {
			var objs []runtime.Object
			if tc.existing != nil {
				objs = append(objs, tc.existing)
			}
			w, c := fakeWriter(cli.DryRunNone, objs...)
			if _, err := w.Apply(context.Background(), cmGVR, configMap("b", true)); err != nil {
				t.Fatal(err)
			}
			sent := c.Writes()
			if len(sent) != 1 {
				t.Fatalf("sent %v, want one apply", sent)
			}
			if f := sent[0].(k8stesting.PatchActionImpl).GetPatchOptions().Force; f == nil || *f != tc.wantForce {
				t.Errorf("force = %v, want %v", f, tc.wantForce)
			}
		})
	}
}

func TestWriterDelete(t *testing.T) {
	t.Run("not ours is refused", func(t *testing.T) {
		w, c := fakeWriter(cli.DryRunNone, configMap("a", false))
		if err := w.Delete(context.Background(), cmGVR, configMap("a", false)); !errors.Is(err, cli.ErrNotManaged) {
			t.Fatalf("Delete = %v, want cli.ErrNotManaged", err)
		}
		if _, err := w.DeleteManaged(context.Background(), cmGVR, "ns", "cm"); err == nil || !strings.Contains(err.Error(), "delete it by hand") {
			t.Fatalf("DeleteManaged = %v, want the by-hand error", err)
		}
		if sent := c.Writes(); len(sent) != 0 {
			t.Fatalf("sent %v", sent)
		}
	})
	t.Run("ours, with the version read as precondition", func(t *testing.T) {
		w, c := fakeWriter(cli.DryRunServer, configMap("a", true))
		if err := w.Delete(context.Background(), cmGVR, configMap("a", true)); err != nil {
			t.Fatal(err)
		}
		sent := c.Writes()
		if len(sent) != 1 {
			t.Fatalf("sent %v", sent)
		}
		o := sent[0].(k8stesting.DeleteActionImpl).GetDeleteOptions()
		if o.Preconditions == nil || *o.Preconditions.UID != "u1" || *o.Preconditions.ResourceVersion != "7" || len(o.DryRun) != 1 {
			t.Errorf("delete options %+v", o)
		}
	})
	t.Run("client dry run sends nothing", func(t *testing.T) {
		w, c := fakeWriter(cli.DryRunClient, configMap("a", true))
		if ok, err := w.DeleteManaged(context.Background(), cmGVR, "ns", "cm"); !ok || err != nil {
			t.Fatalf("DeleteManaged = %v, %v", ok, err)
		}
		if sent := c.Writes(); len(sent) != 0 {
			t.Fatalf("sent %v", sent)
		}
	})
}

func TestHoldsAStoredCopy(t *testing.T) {
	se, err := builders.ServiceEntry(httpbinEntry())
	if err != nil {
		t.Fatal(err)
	}
	// What the API server returns: a JSON round trip plus server fields.
	stored := &unstructured.Unstructured{}
	b, _ := json.Marshal(se.Object)
	if err := stored.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	stored.SetResourceVersion("42")
	stored.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "kubectl-mesh", "team": "x"})
	if !cli.Holds(stored, se) {
		t.Errorf("cli.Holds(stored copy) = false, want true")
	}
	changed := httpbinEntry()
	changed.VIP = "240.0.0.9"
	se2, _ := builders.ServiceEntry(changed)
	if cli.Holds(stored, se2) {
		t.Errorf("cli.Holds() with another VIP = true, want false")
	}
	if cli.Holds(nil, se) {
		t.Errorf("cli.Holds(nil) = true")
	}
}

func httpbinEntry() builders.Export {
	return builders.Export{
		Name: "httpbin", Namespace: "bar", TargetNamespace: "foo",
		Ports:   []builders.Port{{Name: "http1", Number: 8000, Protocol: "HTTP"}},
		Sources: []builders.Source{{Cluster: "cluster2", GatewayHost: "203.0.113.7", GatewayPort: 15443, Versions: []string{"v1"}}},
		VIP:     "240.0.0.2",
	}
}
