package webhook

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
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
				hookRules := w["rules"].([]any)
				r := hookRules[0].(map[string]any)
				check(len(hookRules) == 1 && slices.Equal(r["apiGroups"].([]any), []any{"networking.istio.io"}) && slices.Equal(r["apiVersions"].([]any), []any{"v1"}) &&
					slices.Equal(r["resources"].([]any), []any{want.resource}) && slices.Equal(r["operations"].([]any), want.operations),
					fmt.Sprintf("rules must be %s v1 %v", want.resource, want.operations))
				mc := w["matchConditions"].([]any)
				check(len(mc) == 1 && strings.Contains(mc[0].(map[string]any)["expression"].(string), ".global"), "matchConditions must select .global hosts")
				sel, _ := yaml.Marshal(w["namespaceSelector"])
				for _, want := range []string{"kube-system", "kube-node-lease", "mesh-system", "mesh.kubectl-mesh.io/webhook", "disabled"} {
					check(strings.Contains(string(sel), want), "namespaceSelector must exclude "+want)
				}
				svc := w["clientConfig"].(map[string]any)["service"].(map[string]any)
				check(svc["name"] == Name && svc["namespace"] == rules.MeshNamespace && svc["path"] == want.path, "clientConfig must call Service mesh-system/mesh-webhook at "+want.path)
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

// rule is one RBAC policy rule as the manifests spell it.
type rule struct {
	APIGroups       []string `json:"apiGroups,omitempty"`
	Resources       []string `json:"resources,omitempty"`
	ResourceNames   []string `json:"resourceNames,omitempty"`
	NonResourceURLs []string `json:"nonResourceURLs,omitempty"`
	Verbs           []string `json:"verbs"`
}

// baseRBAC are the rules of every install, by "Kind namespace/name": the
// calls mesh-webhook makes, each verb accounted for.
var baseRBAC = map[string][]rule{
	"ClusterRole /mesh-webhook": {
		// pkg/vip: the informer cache (list, watch), Claim/Allocate
		// (create, get), the repair loop (update adopts, delete releases).
		{APIGroups: []string{"mesh.kubectl-mesh.io"}, Resources: []string{"vipclaims"}, Verbs: []string{"get", "list", "watch", "create", "update", "delete"}},
		// Repair reads entries; the handlers watch entries and rules.
		{APIGroups: []string{"networking.istio.io"}, Resources: []string{"serviceentries", "destinationrules"}, Verbs: []string{"get", "list", "watch"}},
		// Duplicate-VIP Events (client-go's events.k8s.io broadcaster:
		// create, then patch for a series).
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		// --metrics-secure: controller-runtime's authentication and
		// authorization filter.
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
		// SyncConfigurations and SelfManagedTLS: get, then a JSON patch.
		{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"}, ResourceNames: []string{Name}, Verbs: []string{"get", "patch"}},
	},
	"Role mesh-system/mesh-webhook": {
		// The policy ConfigMap, read and watched by name.
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"mesh-webhook-config"}, Verbs: []string{"get", "list", "watch"}},
		// client-go's LeaseLock: Create, then Get and Update.
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{LeaderElectionID}, Verbs: []string{"get", "update"}},
		// Leader election's Events on the Lease (core recorder).
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	},
	// Bound by the user to the metrics scraper, not to mesh-webhook.
	"ClusterRole /mesh-webhook-metrics-reader": {
		{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}},
	},
}

// overlayRBAC are the rules an overlay adds.
var overlayRBAC = map[string]map[string][]rule{
	"overlays/cert-manager": {},
	"overlays/self-managed": {
		// SelfManagedTLS: the shared Secret is created once, then read and
		// updated by name.
		"Role mesh-system/mesh-webhook-tls": {
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{ServingSecretName}, Verbs: []string{"get", "update"}},
		},
	},
}

// TestRBACIsExactlyWhatTheCodeUses compares every Role and ClusterRole of
// each overlay with the rules above: a new right must be argued for here,
// and one the code stops using must go.
func TestRBACIsExactlyWhatTheCodeUses(t *testing.T) {
	for overlay, extra := range overlayRBAC {
		m := render(t, overlay)
		want := map[string][]rule{}
		for k, v := range baseRBAC {
			want[k] = v
		}
		for k, v := range extra {
			want[k] = v
		}
		got := map[string][]rule{}
		for _, kind := range []string{"ClusterRole", "Role"} {
			for _, o := range objects(t, m, kind) {
				meta := o["metadata"].(map[string]any)
				ns, _ := meta["namespace"].(string)
				b, err := json.Marshal(o["rules"])
				if err != nil {
					t.Fatal(err)
				}
				var rules []rule
				if err := json.Unmarshal(b, &rules); err != nil {
					t.Fatal(err)
				}
				got[kind+" "+ns+"/"+meta["name"].(string)] = rules
			}
		}
		for key, w := range want {
			g, ok := got[key]
			if !ok {
				t.Errorf("%s: %s missing", overlay, key)
				continue
			}
			if !reflect.DeepEqual(g, w) {
				gy, _ := yaml.Marshal(g)
				wy, _ := yaml.Marshal(w)
				t.Errorf("%s: %s has rules\n%s\nwant exactly\n%s", overlay, key, gy, wy)
			}
		}
		for key := range got {
			if _, ok := want[key]; !ok {
				t.Errorf("%s: %s is not accounted for in this test", overlay, key)
			}
		}
		// Every Role is bound to mesh-webhook's ServiceAccount, except the
		// scraper's.
		bound := map[string]bool{}
		for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
			for _, o := range objects(t, m, kind) {
				ref := o["roleRef"].(map[string]any)
				meta := o["metadata"].(map[string]any)
				ns, _ := meta["namespace"].(string)
				subjects, _ := json.Marshal(o["subjects"])
				if string(subjects) != `[{"kind":"ServiceAccount","name":"mesh-webhook","namespace":"mesh-system"}]` {
					t.Errorf("%s: %s %s binds %s", overlay, kind, meta["name"], subjects)
				}
				bound[ref["kind"].(string)+" "+ns+"/"+ref["name"].(string)] = true
			}
		}
		for key := range want {
			if !bound[key] && key != "ClusterRole /mesh-webhook-metrics-reader" {
				t.Errorf("%s: %s is not bound to mesh-webhook", overlay, key)
			}
		}
	}
}

// TestNetworkPolicyAdmitsOnlyTheServedPorts: ingress to the webhook's pods
// is limited to the ports the Deployment serves (webhook, probes, metrics),
// and metrics are served with authentication.
func TestNetworkPolicyAdmitsOnlyTheServedPorts(t *testing.T) {
	for _, overlay := range []string{"overlays/cert-manager", "overlays/self-managed"} {
		m := render(t, overlay)
		dep := objects(t, m, "Deployment")[0]
		pod := dep["spec"].(map[string]any)["template"].(map[string]any)
		c := pod["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
		served := map[string]float64{}
		for _, p := range c["ports"].([]any) {
			served[p.(map[string]any)["name"].(string)] = p.(map[string]any)["containerPort"].(float64)
		}
		want := []float64{served["webhook"], served["probes"], served["metrics"]}
		if len(served) != 3 || slices.Contains(want, 0) {
			t.Fatalf("%s: Deployment ports %v, want webhook, probes and metrics", overlay, served)
		}
		args, _ := yaml.Marshal(c["args"])
		if !strings.Contains(string(args), "--metrics-secure=true") || !strings.Contains(string(args), fmt.Sprintf("--metrics-bind-address=:%d", int(served["metrics"]))) ||
			!strings.Contains(string(args), fmt.Sprintf("--port=%d", int(served["webhook"]))) || !strings.Contains(string(args), fmt.Sprintf("--health-probe-bind-address=:%d", int(served["probes"]))) {
			t.Errorf("%s: the Deployment's flags do not serve on its declared ports with --metrics-secure=true:\n%s", overlay, args)
		}

		nps := objects(t, m, "NetworkPolicy")
		if len(nps) != 1 {
			t.Fatalf("%s: %d NetworkPolicies, want one", overlay, len(nps))
		}
		spec := nps[0]["spec"].(map[string]any)
		sel, _ := json.Marshal(spec["podSelector"])
		podLabels, _ := json.Marshal(map[string]any{"matchLabels": pod["metadata"].(map[string]any)["labels"]})
		if string(sel) != string(podLabels) {
			t.Errorf("%s: NetworkPolicy selects %s, the Deployment's pods are %s", overlay, sel, podLabels)
		}
		if !slices.Equal(spec["policyTypes"].([]any), []any{"Ingress"}) {
			t.Errorf("%s: policyTypes %v, want [Ingress]", overlay, spec["policyTypes"])
		}
		var got []float64
		for _, rule := range spec["ingress"].([]any) {
			r := rule.(map[string]any)
			if r["from"] != nil {
				t.Errorf("%s: ingress rule limited to %v: the API server's address differs by distribution", overlay, r["from"])
			}
			for _, p := range r["ports"].([]any) {
				pm := p.(map[string]any)
				if pm["protocol"] != "TCP" {
					t.Errorf("%s: ingress port %v is not TCP", overlay, pm)
				}
				got = append(got, pm["port"].(float64))
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: NetworkPolicy admits ports %v, want exactly the served %v", overlay, got, want)
		}
	}
}
