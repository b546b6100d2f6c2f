package webhook

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"
)

// baseConfigurations decodes the webhook configurations of deploy/webhook
// as kustomize renders the base.
func baseConfigurations(t *testing.T) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration) {
	t.Helper()
	m := render(t, "base")
	decode := func(kind string, into any) {
		objs := objects(t, m, kind)
		if len(objs) != 1 {
			t.Fatalf("base: want one %s, got %d", kind, len(objs))
		}
		b, err := json.Marshal(objs[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatal(err)
		}
	}
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	decode("MutatingWebhookConfiguration", &mwc)
	decode("ValidatingWebhookConfiguration", &vwc)
	return &mwc, &vwc
}

// TestBaseMatchConditionsAreGenerated keeps webhooks.yaml equal to what
// mesh-webhook writes for the default suffix, so that a fresh install and
// a synced one do not differ, and every webhook there is one it knows.
func TestBaseMatchConditionsAreGenerated(t *testing.T) {
	mwc, vwc := baseConfigurations(t)
	want := MatchConditions("global")
	seen := map[string]bool{}
	check := func(kind, name string, got []admissionregistrationv1.MatchCondition) {
		t.Helper()
		seen[name] = true
		w, ok := want[name]
		if !ok {
			t.Errorf("%s webhook %s: not one of MatchConditions' webhooks; add it there", kind, name)
			return
		}
		if !reflect.DeepEqual(got, w) {
			gy, _ := yaml.Marshal(got)
			wy, _ := yaml.Marshal(w)
			t.Errorf("%s webhook %s: webhooks.yaml has matchConditions\n%s\nMatchConditions(\"global\") generates\n%s", kind, name, gy, wy)
		}
	}
	for _, w := range mwc.Webhooks {
		check("mutating", w.Name, w.MatchConditions)
	}
	for _, w := range vwc.Webhooks {
		check("validating", w.Name, w.MatchConditions)
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("MatchConditions generates conditions for %s, which webhooks.yaml does not register", name)
		}
	}
}

func TestMatchConditions(t *testing.T) {
	for suffix, tc := range map[string]struct {
		want, notWant []string
	}{
		"global":        {want: []string{"'global'", "'.global'", "'.global.'"}},
		"Mesh.Example":  {want: []string{"'mesh.example'", "'.mesh.example.'"}, notWant: []string{"global", "Mesh"}},
		`bad'suffix\\x`: {want: []string{`'bad\'suffix\\\\x'`}},
	} {
		t.Run(suffix, func(t *testing.T) {
			got := MatchConditions(suffix)
			for name, conds := range got {
				if len(conds) != 1 || conds[0].Name != MatchConditionName {
					t.Fatalf("%s: %v, want one condition named %s", name, conds, MatchConditionName)
				}
				for _, w := range tc.want {
					if !strings.Contains(conds[0].Expression, w) {
						t.Errorf("%s (suffix %q): %s lacks %s", name, suffix, conds[0].Expression, w)
					}
				}
				for _, w := range tc.notWant {
					if strings.Contains(conds[0].Expression, w) {
						t.Errorf("%s (suffix %q): %s holds %s", name, suffix, conds[0].Expression, w)
					}
				}
			}
			for name, field := range map[string]string{WebhookServiceEntries: "object.spec.hosts", WebhookDestinationRules: "object.spec.host)", WebhookServiceEntryDeletes: "oldObject.spec.hosts"} {
				if e := got[name][0].Expression; !strings.Contains(e, field) || (name != WebhookServiceEntryDeletes && strings.Contains(e, "oldObject")) {
					t.Errorf("%s: %s does not test %s", name, e, field)
				}
			}
		})
	}
}

func TestSyncConfigurations(t *testing.T) {
	ctx := context.Background()
	mwc, vwc := baseConfigurations(t)
	// caBundle and a webhook that is not ours must survive the patch.
	for i := range mwc.Webhooks {
		mwc.Webhooks[i].ClientConfig.CABundle = []byte("ca")
	}
	foreign := vwc.Webhooks[0].DeepCopy()
	foreign.Name = "other.example.com"
	vwc.Webhooks = append(vwc.Webhooks, *foreign)
	kube := fake.NewClientset(mwc, vwc)
	patches := func() int {
		n := 0
		for _, a := range kube.Actions() {
			if a.GetVerb() == "patch" {
				n++
			}
		}
		return n
	}

	if err := SyncConfigurations(ctx, kube, Name, "global"); err != nil {
		t.Fatal(err)
	}
	if n := patches(); n != 0 {
		t.Fatalf("suffix unchanged: %d patches, want none", n)
	}

	if err := SyncConfigurations(ctx, kube, Name, "mesh"); err != nil {
		t.Fatal(err)
	}
	if n := patches(); n != 2 {
		t.Errorf("suffix mesh: %d patches, want one per configuration", n)
	}
	want := MatchConditions("mesh")
	m, _ := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, Name, metav1.GetOptions{})
	v, _ := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, Name, metav1.GetOptions{})
	for _, w := range m.Webhooks {
		if !reflect.DeepEqual(w.MatchConditions, want[w.Name]) {
			t.Errorf("mutating %s: %v, want %v", w.Name, w.MatchConditions, want[w.Name])
		}
		if string(w.ClientConfig.CABundle) != "ca" {
			t.Errorf("mutating %s: caBundle %q lost", w.Name, w.ClientConfig.CABundle)
		}
	}
	for _, w := range v.Webhooks {
		if w.Name == foreign.Name {
			if !reflect.DeepEqual(w.MatchConditions, foreign.MatchConditions) {
				t.Errorf("a webhook that is not mesh-webhook's was changed: %v", w.MatchConditions)
			}
			continue
		}
		if !reflect.DeepEqual(w.MatchConditions, want[w.Name]) {
			t.Errorf("validating %s: %v, want %v", w.Name, w.MatchConditions, want[w.Name])
		}
	}
	before := patches()
	if err := SyncConfigurations(ctx, kube, Name, "mesh"); err != nil {
		t.Fatal(err)
	}
	if n := patches() - before; n != 0 {
		t.Errorf("in sync already: %d patches, want none", n)
	}

	if err := SyncConfigurations(ctx, kube, Name, "Not A Suffix"); err == nil {
		t.Error("an invalid suffix was written into the configurations")
	}
}

func TestSyncConfigurationsPatchTestsTheName(t *testing.T) {
	ctx := context.Background()
	mwc, vwc := baseConfigurations(t)
	kube := fake.NewClientset(mwc, vwc)
	var patch []byte
	kube.PrependReactor("patch", "mutatingwebhookconfigurations", func(a k8stesting.Action) (bool, runtime.Object, error) {
		patch = a.(k8stesting.PatchAction).GetPatch()
		return false, nil, nil
	})
	if err := SyncConfigurations(ctx, kube, Name, "mesh"); err != nil {
		t.Fatal(err)
	}
	var ops []map[string]any
	if err := json.Unmarshal(patch, &ops); err != nil {
		t.Fatalf("patch %s: %v", patch, err)
	}
	if len(ops) != 2*len(mwc.Webhooks) || ops[0]["op"] != "test" || ops[0]["path"] != "/webhooks/0/name" || ops[1]["path"] != "/webhooks/0/matchConditions" {
		t.Errorf("patch %s: want a test of each webhook's name before replacing its matchConditions", patch)
	}
}

func TestSyncConfigurationsWithoutConfigurations(t *testing.T) {
	// The configurations may be applied after the Deployment.
	if err := SyncConfigurations(context.Background(), fake.NewClientset(), Name, "global"); err != nil {
		t.Fatal(err)
	}
}
