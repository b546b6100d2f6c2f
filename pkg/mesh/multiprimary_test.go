package mesh

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestWithoutSecrets(t *testing.T) {
	read := []string{"get", "list", "watch"}
	tests := map[string]struct {
		in      []rbacv1.PolicyRule
		want    []rbacv1.PolicyRule
		wantErr string
	}{
		"Istio's rules lose only secrets": {
			in:   IstioReaderRules()[:2],
			want: []rbacv1.PolicyRule{IstioReaderRules()[0], {APIGroups: []string{""}, Resources: []string{"endpoints", "pods", "services", "nodes", "replicationcontrollers", "namespaces", "configmaps"}, Verbs: read}},
		},
		"a rule of secrets only is dropped": {
			in:   []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets", "secrets/status"}, Verbs: read}, {APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: read}},
			want: []rbacv1.PolicyRule{{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: read}},
		},
		"a secrets resource of another group stays": {
			in:   []rbacv1.PolicyRule{{APIGroups: []string{"example.com"}, Resources: []string{"secrets"}, Verbs: read}},
			want: []rbacv1.PolicyRule{{APIGroups: []string{"example.com"}, Resources: []string{"secrets"}, Verbs: read}},
		},
		"a core wildcard cannot be narrowed": {
			in:      []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: read}},
			wantErr: "cannot be narrowed",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := WithoutSecrets(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("WithoutSecrets(%v) = %v, want an error with %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("WithoutSecrets(%v) =\n%v (%v)\nwant\n%v", tc.in, got, err, tc.want)
			}
		})
	}
	in := IstioReaderRules()
	if _, err := WithoutSecrets(in); err != nil || fmt.Sprint(in) != fmt.Sprint(IstioReaderRules()) {
		t.Fatal("WithoutSecrets changed its input")
	}
}

// jwt is a token with the claims of a bound service account token.
func jwt(iat, exp time.Time, sa, secret string) string {
	enc := base64.RawURLEncoding.EncodeToString
	c := map[string]any{"iat": iat.Unix(), "kubernetes.io": map[string]any{"namespace": "istio-system",
		"serviceaccount": map[string]any{"name": sa, "uid": "u1"}, "secret": map[string]any{"name": secret, "uid": "s1"}}}
	if !exp.IsZero() {
		c["exp"] = exp.Unix()
	}
	b, _ := json.Marshal(c)
	return enc([]byte(`{"alg":"RS256","kid":"k"}`)) + "." + enc(b) + ".c2ln"
}

func TestTokenClaimsRenewal(t *testing.T) {
	iat := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	year := 365 * 24 * time.Hour
	c, err := ReadTokenClaims(jwt(iat, iat.Add(year), "istio-reader-service-account", "kubectl-mesh-remote-token-east"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Issued.Equal(iat) || !c.Expires.Equal(iat.Add(year)) || c.ServiceAccount != "istio-reader-service-account" || c.Namespace != "istio-system" ||
		c.BoundSecret != "kubectl-mesh-remote-token-east" || c.BoundSecretUID != "s1" {
		t.Fatalf("claims = %+v", c)
	}
	tests := map[string]struct {
		claims      TokenClaims
		renewBefore time.Duration
		want        time.Time
	}{
		"default: the last third": {c, 0, iat.Add(2 * year / 3)},
		"--token-renew-before":    {c, 24 * time.Hour, iat.Add(year - 24*time.Hour)},
		"never expires":           {TokenClaims{Issued: iat}, 0, time.Time{}},
		"no issue time":           {TokenClaims{Expires: iat}, 0, iat},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.claims.RenewFrom(tc.renewBefore); !got.Equal(tc.want) {
				t.Fatalf("RenewFrom(%s) of %+v = %s, want %s", tc.renewBefore, tc.claims, got, tc.want)
			}
		})
	}
	legacy := base64.RawURLEncoding.EncodeToString([]byte(`{"kubernetes.io/serviceaccount/namespace":"istio-system","kubernetes.io/serviceaccount/service-account.name":"istio-reader-service-account"}`))
	if c, err := ReadTokenClaims("e30." + legacy + ".x"); err != nil || c.ServiceAccount != "istio-reader-service-account" || !c.Expires.IsZero() {
		t.Fatalf("legacy token Secret token: %+v %v", c, err)
	}
	for _, bad := range []string{"REDACTED", "a.!!!.c", "a." + base64.RawURLEncoding.EncodeToString([]byte("[1]")) + ".c"} {
		if _, err := ReadTokenClaims(bad); err == nil {
			t.Errorf("ReadTokenClaims(%q) took it for a JWT", bad)
		}
	}
}

func TestLoopbackServer(t *testing.T) {
	for server, want := range map[string]bool{
		"https://127.0.0.1:6443": true, "https://127.0.1.1": true, "https://[::1]:6443": true, "https://localhost:6443": true,
		"https://api.localhost": true, "https://10.0.0.2:6443": false, "https://api.example.com": false, "not a url": false,
	} {
		if got := LoopbackServer(server); got != want {
			t.Errorf("LoopbackServer(%q) = %v, want %v", server, got, want)
		}
	}
}

func TestNetworkLabelChange(t *testing.T) {
	tests := map[string]struct {
		labels      map[string]string
		set         []string // networks set in turn
		someoneSets string   // then someone else sets the label to this
		wantLabels  map[string]string
		wantWhat    string
	}{
		"absent before": {labels: map[string]string{"a": "b"}, set: []string{"n1"}, wantLabels: map[string]string{"a": "b"}, wantWhat: "removed"},
		"replaced":      {labels: map[string]string{NetworkLabel: "old"}, set: []string{"n1"}, wantLabels: map[string]string{NetworkLabel: "old"}, wantWhat: "=old restored"},
		"set twice":     {labels: map[string]string{NetworkLabel: "old"}, set: []string{"n1", "n2"}, wantLabels: map[string]string{NetworkLabel: "old"}, wantWhat: "=old restored"},
		"already so":    {labels: map[string]string{NetworkLabel: "n1"}, set: []string{"n1"}, wantLabels: map[string]string{NetworkLabel: "n1"}},
		"changed since": {labels: map[string]string{}, set: []string{"n1"}, someoneSets: "theirs", wantLabels: map[string]string{NetworkLabel: "theirs"}, wantWhat: "left alone"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			labels, ann := maps.Clone(tc.labels), map[string]string{}
			for _, n := range tc.set {
				SetNetwork(labels, ann, n)
				if labels[NetworkLabel] != n {
					t.Fatalf("SetNetwork(%s): labels %v", n, labels)
				}
			}
			if tc.someoneSets != "" {
				labels[NetworkLabel] = tc.someoneSets
			}
			changed, what := RestoreNetwork(labels, ann)
			if changed != (tc.wantWhat != "") || !strings.Contains(what, tc.wantWhat) || !maps.Equal(labels, tc.wantLabels) || len(ann) != 0 {
				t.Fatalf("RestoreNetwork = %v %q, labels %v, annotations %v; want %q, %v", changed, what, labels, ann, tc.wantWhat, tc.wantLabels)
			}
		})
	}
}

func TestIstiodFactsFrom(t *testing.T) {
	dep := func(name string, env ...corev1.EnvVar) appsv1.Deployment {
		return appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "istio-system"}, Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "sidecar"}, {Name: "discovery", Image: "istio/pilot:1.25.2", Env: env}}}}}}
	}
	tests := map[string]struct {
		deps []appsv1.Deployment
		want IstiodFacts
		ok   bool
	}{
		"clusterName set":        {[]appsv1.Deployment{dep("istiod", corev1.EnvVar{Name: "CLUSTER_ID", Value: "cluster2"})}, IstiodFacts{"istio-system/istiod", "cluster2", true, "istio/pilot:1.25.2"}, true},
		"Istio's default":        {[]appsv1.Deployment{dep("istiod")}, IstiodFacts{"istio-system/istiod", DefaultClusterName, false, "istio/pilot:1.25.2"}, true},
		"istiod before revision": {[]appsv1.Deployment{dep("istiod-canary", corev1.EnvVar{Name: "CLUSTER_ID", Value: "c"}), dep("istiod", corev1.EnvVar{Name: "CLUSTER_ID", Value: "d"})}, IstiodFacts{"istio-system/istiod", "d", true, "istio/pilot:1.25.2"}, true},
		"revisions only":         {[]appsv1.Deployment{dep("istiod-b"), dep("istiod-a", corev1.EnvVar{Name: "CLUSTER_ID", Value: "a"})}, IstiodFacts{"istio-system/istiod-a", "a", true, "istio/pilot:1.25.2"}, true},
		"none":                   {nil, IstiodFacts{}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := IstiodFactsFrom(tc.deps)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("IstiodFactsFrom = %+v %v, want %+v %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestRemoteSecretReadBack(t *testing.T) {
	kc, err := RemoteKubeconfig("west", "https://10.0.0.2:6443", []byte("CA"), "tok")
	if err != nil {
		t.Fatal(err)
	}
	v, err := ReadRemoteKubeconfig(kc)
	if err != nil || v.Server != "https://10.0.0.2:6443" || string(v.CAData) != "CA" || v.Token != "tok" {
		t.Fatalf("ReadRemoteKubeconfig = %+v, %v", v, err)
	}
	s := RemoteSecret("west", kc)
	if s.Name != "istio-remote-secret-west" || s.Namespace != "istio-system" || len(s.Data) != 1 || s.Annotations[ClusterAnnotation] != "west" || s.Labels[MultiClusterLabel] != "true" {
		t.Fatalf("RemoteSecret = %+v", s.ObjectMeta)
	}
	for _, bad := range []string{"Kubernetes", "cluster_2", ""} {
		if ValidateClusterName(bad) == nil {
			t.Errorf("ValidateClusterName(%q) accepts a name no Secret can have", bad)
		}
	}
	if _, err := ReadRemoteKubeconfig([]byte("apiVersion: v1\nkind: Config\ncurrent-context: x\n")); err == nil {
		t.Fatal("a kubeconfig without its current context is read")
	}
}

func TestEastWestGatewayInstall(t *testing.T) {
	iop := EastWestGatewayOperator("network2", "")
	gws, _, _ := unstructured.NestedSlice(iop.Object, "spec", "components", "ingressGateways")
	if len(gws) != 1 {
		t.Fatalf("ingressGateways = %v", gws)
	}
	gw := gws[0].(map[string]any)
	labels, _, _ := unstructured.NestedStringMap(gw, "label")
	net, _, _ := unstructured.NestedString(iop.Object, "spec", "values", "global", "network")
	env, _, _ := unstructured.NestedSlice(gw, "k8s", "env")
	ports, _, _ := unstructured.NestedSlice(gw, "k8s", "service", "ports")
	if gw["name"] != "istio-eastwestgateway" || labels["istio"] != "eastwestgateway" || labels[NetworkLabel] != "network2" || net != "network2" ||
		fmt.Sprint(env) != "[map[name:ISTIO_META_REQUESTED_NETWORK_VIEW value:network2]]" || len(ports) != 4 || !strings.Contains(fmt.Sprint(ports), "port:15443") {
		t.Fatalf("IstioOperator = %v", iop.Object)
	}
	if got := EastWestGatewayHelmCommand("network2"); got != "helm install istio-eastwestgateway istio/gateway -n istio-system --set name=istio-eastwestgateway --set networkGateway=network2" {
		t.Fatalf("helm command = %s", got)
	}
	if v := EastWestGatewayHelmValues("network2"); v["networkGateway"] != "network2" || v["name"] != "istio-eastwestgateway" {
		t.Fatalf("helm values = %v", v)
	}
}
