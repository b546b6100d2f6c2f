package webhook

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// render builds a kustomization of deploy/webhook the way kubectl apply -k
// does.
func render(t *testing.T, dir string) resmap.ResMap {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join("..", "..", "deploy", "webhook", dir))
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	return m
}

func objects(t *testing.T, m resmap.ResMap, kind string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range m.Resources() {
		if r.GetKind() != kind {
			continue
		}
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var o map[string]any
		if err := yaml.Unmarshal(b, &o); err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

// wantWebhook is what the manifests must say of one webhook.
type wantWebhook struct {
	path, resource string
	operations     []any
	failurePolicy  string
	maxTimeout     float64
}

// wantWebhooks are mesh-webhook's webhooks by configuration kind and name.
var wantWebhooks = map[string]map[string]wantWebhook{
	"MutatingWebhookConfiguration": {
		WebhookServiceEntries:   {path: MutatePath, resource: "serviceentries", operations: []any{"CREATE", "UPDATE"}, failurePolicy: "Fail", maxTimeout: 5},
		WebhookDestinationRules: {path: "/mutate-destinationrules", resource: "destinationrules", operations: []any{"CREATE", "UPDATE"}, failurePolicy: "Fail", maxTimeout: 5},
	},
	"ValidatingWebhookConfiguration": {
		WebhookServiceEntries:   {path: ValidatePath, resource: "serviceentries", operations: []any{"CREATE", "UPDATE"}, failurePolicy: "Fail", maxTimeout: 5},
		WebhookDestinationRules: {path: "/validate-destinationrules", resource: "destinationrules", operations: []any{"CREATE", "UPDATE"}, failurePolicy: "Fail", maxTimeout: 5},
		// A webhook outage must never block a delete.
		WebhookServiceEntryDeletes: {path: ValidatePath, resource: "serviceentries", operations: []any{"DELETE"}, failurePolicy: "Ignore", maxTimeout: 2},
	},
}

// TestWebhookConfigurationSafety pins the settings that keep the webhook
// from hurting a cluster (DESIGN §5) in the manifests users apply.
func TestWebhookConfigurationSafety(t *testing.T) {
	for _, overlay := range []string{"overlays/cert-manager", "overlays/self-managed"} {
		m := render(t, overlay)
		for kind, hooks := range wantWebhooks {
			objs := objects(t, m, kind)
			if len(objs) != 1 || objs[0]["metadata"].(map[string]any)["name"] != Name {
				t.Fatalf("%s: want one %s named %s, got %d", overlay, kind, Name, len(objs))
			}
			seen := map[string]bool{}
			for _, h := range objs[0]["webhooks"].([]any) {
				w := h.(map[string]any)
				name, _ := w["name"].(string)
				where := overlay + " " + kind + " " + name
				want, ok := hooks[name]
				if !ok {
					t.Errorf("%s: not one of mesh-webhook's webhooks", where)
					continue
				}
				seen[name] = true
				check := func(ok bool, what string) {
					t.Helper()
					if !ok {
						t.Errorf("%s: %s", where, what)
					}
				}
				check(w["failurePolicy"] == want.failurePolicy, "failurePolicy must be "+want.failurePolicy)
				check(w["sideEffects"] == "NoneOnDryRun", "sideEffects must be NoneOnDryRun")
				check(w["matchPolicy"] == "Equivalent", "matchPolicy must be Equivalent")
				to, _ := w["timeoutSeconds"].(float64)
				check(to > 0 && to <= want.maxTimeout, fmt.Sprintf("timeoutSeconds must be at most %v", want.maxTimeout))
				check(slices.Equal(w["admissionReviewVersions"].([]any), []any{"v1"}), "admissionReviewVersions must be [v1]")
				rules := w["rules"].([]any)
				r := rules[0].(map[string]any)
				check(len(rules) == 1 && slices.Equal(r["apiGroups"].([]any), []any{"networking.istio.io"}) && slices.Equal(r["apiVersions"].([]any), []any{"v1"}) &&
					slices.Equal(r["resources"].([]any), []any{want.resource}) && slices.Equal(r["operations"].([]any), want.operations),
					fmt.Sprintf("rules must be %s v1 %v", want.resource, want.operations))
				mc := w["matchConditions"].([]any)
				check(len(mc) == 1 && strings.Contains(mc[0].(map[string]any)["expression"].(string), ".global"), "matchConditions must select .global hosts")
				sel, _ := yaml.Marshal(w["namespaceSelector"])
				for _, want := range []string{"kube-system", "kube-node-lease", "mesh-system", "mesh.kubectl-mesh.io/webhook", "disabled"} {
					check(strings.Contains(string(sel), want), "namespaceSelector must exclude "+want)
				}
				svc := w["clientConfig"].(map[string]any)["service"].(map[string]any)
				check(svc["name"] == Name && svc["namespace"] == DefaultNamespace && svc["path"] == want.path, "clientConfig must call Service mesh-system/mesh-webhook at "+want.path)
			}
			for name := range hooks {
				if !seen[name] {
					t.Errorf("%s %s: webhook %s missing", overlay, kind, name)
				}
			}
		}
		if n := len(objects(t, m, "ValidatingAdmissionPolicy")) + len(objects(t, m, "ValidatingAdmissionPolicyBinding")); n != 2 {
			t.Errorf("%s: want the ValidatingAdmissionPolicy and its binding, got %d objects", overlay, n)
		}
		deps := objects(t, m, "Deployment")
		if len(deps) != 1 {
			t.Fatalf("%s: %d Deployments", overlay, len(deps))
		}
		spec := deps[0]["spec"].(map[string]any)
		pod := spec["template"].(map[string]any)["spec"].(map[string]any)
		c := pod["containers"].([]any)[0].(map[string]any)
		sc := c["securityContext"].(map[string]any)
		if spec["replicas"] != float64(2) || sc["readOnlyRootFilesystem"] != true || pod["securityContext"].(map[string]any)["runAsNonRoot"] != true ||
			pod["affinity"] == nil || c["readinessProbe"] == nil || c["livenessProbe"] == nil || c["resources"] == nil {
			t.Errorf("%s: Deployment lacks HA or hardening settings", overlay)
		}
		if len(objects(t, m, "PodDisruptionBudget")) != 1 || len(objects(t, m, "CustomResourceDefinition")) != 1 {
			t.Errorf("%s: want a PodDisruptionBudget and the VIPClaim CRD", overlay)
		}
		args, _ := yaml.Marshal(c["args"])
		volumes, _ := yaml.Marshal(pod["volumes"])
		switch overlay {
		case "overlays/self-managed":
			if !strings.Contains(string(args), "--tls-mode=self-managed") || !strings.Contains(string(volumes), "emptyDir") {
				t.Errorf("%s: the Deployment must run --tls-mode=self-managed with a writable cert dir", overlay)
			}
		case "overlays/cert-manager":
			if strings.Contains(string(args), "self-managed") || !strings.Contains(string(volumes), "mesh-webhook-tls") || len(objects(t, m, "Certificate")) != 2 {
				t.Errorf("%s: the Deployment must mount the Certificate's Secret", overlay)
			}
			for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
				ann, _ := objects(t, m, kind)[0]["metadata"].(map[string]any)["annotations"].(map[string]any)
				if ann["cert-manager.io/inject-ca-from"] != "mesh-system/mesh-webhook" {
					t.Errorf("%s: %s lacks the CA injection annotation", overlay, kind)
				}
			}
		}
	}
}

