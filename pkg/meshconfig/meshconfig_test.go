package meshconfig

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func configMap(namespace, name string, labels, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels}, Data: data}
}

func rev(r string) map[string]string { return map[string]string{RevisionLabel: r} }

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFind(t *testing.T) {
	mesh := map[string]string{Key: "trustDomain: cluster.local\n"}
	// The sidecar injector's ConfigMap carries the revision label too.
	injector := map[string]string{"config": "policy: enabled\n", "values": "{}"}
	tests := map[string]struct {
		objects  []runtime.Object
		revision string
		want     string
		wantErr  []string
		notFound bool
		forbid   bool
	}{
		"istio present": {
			objects: []runtime.Object{
				configMap(Namespace, "istio", rev("default"), mesh),
				configMap(Namespace, "istio-sidecar-injector", rev("default"), injector),
				configMap(Namespace, "istio-canary", rev("canary"), mesh),
			},
			want: "istio",
		},
		"istio without the mesh key is still the mesh config": {
			objects: []runtime.Object{configMap(Namespace, "istio", nil, nil)},
			want:    "istio",
		},
		"only one revisioned": {
			objects: []runtime.Object{
				configMap(Namespace, "istio-1-22", rev("1-22"), mesh),
				configMap(Namespace, "istio-sidecar-injector-1-22", rev("1-22"), injector),
			},
			want: "istio-1-22",
		},
		"two revisioned": {
			objects: []runtime.Object{
				configMap(Namespace, "istio-1-23", rev("1-23"), mesh),
				configMap(Namespace, "istio-1-22", rev("1-22"), mesh),
			},
			wantErr: []string{"istio-system/istio-1-22 (revision 1-22), istio-system/istio-1-23 (revision 1-23)", "--istio-revision"},
		},
		"explicit revision": {
			objects: []runtime.Object{
				configMap(Namespace, "istio", rev("default"), mesh),
				configMap(Namespace, "istio-canary", rev("canary"), mesh),
			},
			revision: "canary",
			want:     "istio-canary",
		},
		"revision default is istio": {
			objects:  []runtime.Object{configMap(Namespace, "istio", rev("default"), mesh)},
			revision: "default",
			want:     "istio",
		},
		"explicit revision missing": {
			objects:  []runtime.Object{configMap(Namespace, "istio", rev("default"), mesh)},
			revision: "canary",
			wantErr:  []string{"istio-system/istio-canary", "--istio-revision"},
			notFound: true,
		},
		"forbidden": {
			forbid:  true,
			wantErr: []string{"read ConfigMap istio-system/istio", "forbidden"},
		},
		"none": {
			objects: []runtime.Object{
				configMap("other", "istio", nil, mesh),
				configMap(Namespace, "istio-sidecar-injector", rev("default"), injector),
			},
			wantErr:  []string{"istio-system/istio was not found", "Istio ≥ 1.8"},
			notFound: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			kube := fake.NewClientset(tc.objects...)
			if tc.forbid {
				kube.PrependReactor("get", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(corev1.Resource("configmaps"), "istio", errors.New("no RBAC"))
				})
			}
			got, err := Find(context.Background(), kube, tc.revision)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Find(%q) = %s, want an error", tc.revision, got.Name)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				if errors.Is(err, ErrNotFound) != tc.notFound {
					t.Errorf("errors.Is(%q, ErrNotFound) = %v, want %v", err, !tc.notFound, tc.notFound)
				}
				return
			}
			if err != nil {
				t.Fatalf("Find(%q): %v", tc.revision, err)
			}
			if got.Namespace != Namespace || got.Name != tc.want {
				t.Fatalf("Find(%q) = %s/%s, want %s/%s", tc.revision, got.Namespace, got.Name, Namespace, tc.want)
			}
		})
	}
}

func TestDNSCapture(t *testing.T) {
	tests := map[string]struct {
		mesh    string
		want    bool
		wantErr []string
	}{
		"empty":                 {mesh: ""},
		"no defaultConfig":      {mesh: "trustDomain: cluster.local\n"},
		"empty proxyMetadata":   {mesh: fixture(t, "default.yaml")},
		"null proxyMetadata":    {mesh: "defaultConfig:\n  proxyMetadata:\n"},
		"true":                  {mesh: fixture(t, "default.after.yaml"), want: true},
		"True, as istio-agent":  {mesh: "defaultConfig: {proxyMetadata: {ISTIO_META_DNS_CAPTURE: 'True'}}", want: true},
		"false":                 {mesh: "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"false\"\n"},
		"unparsable is off":     {mesh: "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"yes\"\n"},
		"anchored value":        {mesh: "x: &on \"true\"\ndefaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: *on\n", want: true},
		"bare bool true":        {mesh: "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: true\n", wantErr: []string{"key mesh", DNSCapturePath, "bool", `quote it: ISTIO_META_DNS_CAPTURE: "true"`}},
		"null value":            {mesh: "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE:\n", wantErr: []string{DNSCapturePath, "null"}},
		"proxyMetadata list":    {mesh: "defaultConfig:\n  proxyMetadata:\n  - ISTIO_META_DNS_CAPTURE\n", wantErr: []string{"defaultConfig.proxyMetadata is a sequence"}},
		"defaultConfig string":  {mesh: "defaultConfig: none\n", wantErr: []string{"defaultConfig is a YAML str"}},
		"duplicate key":         {mesh: "defaultConfig: {}\ndefaultConfig: {}\n", wantErr: []string{"defaultConfig appears twice"}},
		"malformed":             {mesh: "defaultConfig:\n  proxyMetadata: {\n", wantErr: []string{"key mesh", "not valid YAML"}},
		"not a mapping":         {mesh: "- trustDomain\n", wantErr: []string{"key mesh", "holds a sequence"}},
		"two documents":         {mesh: "trustDomain: a\n---\ntrustDomain: b\n", wantErr: []string{"key mesh", "more than one YAML document"}},
		"trailing document end": {mesh: "trustDomain: a\n---\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := DNSCapture(tc.mesh)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("DNSCapture(%q) = %v, want an error", tc.mesh, got)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("DNSCapture(%q): error %q does not say %q", tc.mesh, err, s)
					}
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("DNSCapture(%q) = %v, %v; want %v", tc.mesh, got, err, tc.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestEnableDNSCapture(t *testing.T) {
	tests := map[string]struct {
		data            map[string]string // nil: no mesh key
		golden          string            // want After exactly
		comments        []string
		previous        *string
		hadDefaultCfg   bool
		hadProxyMeta    bool
		wantNoChange    bool
		wantErr         []string
		wantDescription string
	}{
		"istio's default mesh config": {
			data:            map[string]string{Key: fixture(t, "default.yaml")},
			golden:          fixture(t, "default.after.yaml"),
			hadDefaultCfg:   true,
			hadProxyMeta:    true,
			wantDescription: `ConfigMap istio-system/istio key mesh: defaultConfig.proxyMetadata.ISTIO_META_DNS_CAPTURE "true" (was unset)`,
		},
		"hand-edited with comments": {
			data:          map[string]string{Key: fixture(t, "commented.yaml")},
			hadDefaultCfg: true,
			comments: []string{
				"# Mesh config, edited by hand by the platform team.\n",
				"accessLogFile: /dev/stdout # TODO: turn off in prod\n",
				"    # Keep in sync with the istiod Service.\n    discoveryAddress:",
				"mode: REGISTRY_ONLY # see ticket NET-1234\n",
				"# End of mesh config.\n",
			},
		},
		"flow-style empty proxyMetadata": {
			data:          map[string]string{Key: "defaultConfig: {proxyMetadata: {}}\nrootNamespace: istio-system\n"},
			hadDefaultCfg: true,
			hadProxyMeta:  true,
		},
		"flow-style proxyMetadata with values": {
			data:          map[string]string{Key: "defaultConfig:\n  proxyMetadata: {ISTIO_META_DNS_AUTO_ALLOCATE: \"true\"} # keep\n"},
			golden:        "defaultConfig:\n  proxyMetadata: {ISTIO_META_DNS_AUTO_ALLOCATE: \"true\", ISTIO_META_DNS_CAPTURE: \"true\"} # keep\n",
			hadDefaultCfg: true,
			hadProxyMeta:  true,
		},
		"empty mesh": {
			data:   map[string]string{Key: ""},
			golden: "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"true\"\n",
		},
		"only comments": {
			data:     map[string]string{Key: "# managed by the platform team"},
			golden:   "# managed by the platform team\ndefaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"true\"\n",
			comments: []string{"# managed by the platform team\n"},
		},
		"no mesh key": {
			golden: "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"true\"\n",
		},
		"null defaultConfig keeps its comment": {
			data:   map[string]string{Key: "defaultConfig: # proxy defaults\ntrustDomain: cluster.local\n"},
			golden: "defaultConfig: # proxy defaults\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"true\"\ntrustDomain: cluster.local\n",
		},
		"previous value false": {
			data:            map[string]string{Key: "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"false\" # off for now\n    ISTIO_META_DNS_AUTO_ALLOCATE: \"true\"\n"},
			golden:          "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"true\" # off for now\n    ISTIO_META_DNS_AUTO_ALLOCATE: \"true\"\n",
			previous:        ptr("false"),
			hadDefaultCfg:   true,
			hadProxyMeta:    true,
			wantDescription: `ConfigMap istio-system/istio key mesh: defaultConfig.proxyMetadata.ISTIO_META_DNS_CAPTURE "true" (was "false")`,
		},
		"already on": {
			data:         map[string]string{Key: fixture(t, "default.after.yaml")},
			wantNoChange: true,
		},
		"bare bool": {
			data:    map[string]string{Key: "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: false\n"},
			wantErr: []string{"ConfigMap istio-system/istio key mesh", "quote it"},
		},
		"through an alias": {
			data:    map[string]string{Key: "base: &base\n  discoveryAddress: istiod:15012\ndefaultConfig: *base\n"},
			wantErr: []string{"ConfigMap istio-system/istio key mesh", "alias", "by hand"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cm := configMap(Namespace, ConfigMapName, nil, tc.data)
			ch, err := EnableDNSCapture(cm)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("EnableDNSCapture(%q) = %+v, want an error", tc.data[Key], ch)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("EnableDNSCapture(%q): %v", tc.data[Key], err)
			}
			if tc.wantNoChange {
				if ch != nil {
					t.Fatalf("EnableDNSCapture(%q) = %+v, want no change", tc.data[Key], ch)
				}
				return
			}
			if ch == nil {
				t.Fatalf("EnableDNSCapture(%q) = nil, want a change", tc.data[Key])
			}
			before, hadKey := tc.data[Key]
			if ch.Namespace != Namespace || ch.Name != ConfigMapName || ch.Key != Key || ch.Before != before || ch.HadKey != hadKey {
				t.Errorf("change %+v does not record ConfigMap %s/%s key %s before %q (present %v)", ch, Namespace, ConfigMapName, Key, before, hadKey)
			}
			if ch.HadDefaultConfig != tc.hadDefaultCfg || ch.HadProxyMetadata != tc.hadProxyMeta {
				t.Errorf("HadDefaultConfig, HadProxyMetadata = %v, %v; want %v, %v", ch.HadDefaultConfig, ch.HadProxyMetadata, tc.hadDefaultCfg, tc.hadProxyMeta)
			}
			if !reflect.DeepEqual(ch.PreviousValue, tc.previous) {
				t.Errorf("PreviousValue = %v, want %v", deref(ch.PreviousValue), deref(tc.previous))
			}
			if tc.golden != "" && ch.After != tc.golden {
				t.Errorf("after:\n%s\nwant:\n%s", ch.After, tc.golden)
			}
			if on, err := DNSCapture(ch.After); err != nil || !on {
				t.Errorf("DNSCapture(after) = %v, %v; want on:\n%s", on, err, ch.After)
			}
			for _, c := range tc.comments {
				if !strings.Contains(ch.After, c) {
					t.Errorf("after lost %q:\n%s", c, ch.After)
				}
			}
			// Everything but our key (and the maps holding it, when we made
			// them) is what it was.
			was, is := decode(t, before), decode(t, ch.After)
			withoutCapture(was, tc.hadDefaultCfg, tc.hadProxyMeta)
			withoutCapture(is, tc.hadDefaultCfg, tc.hadProxyMeta)
			if !reflect.DeepEqual(was, is) {
				t.Errorf("other settings changed:\nbefore %v\nafter  %v", was, is)
			}
			if tc.wantDescription != "" && ch.Describe() != tc.wantDescription {
				t.Errorf("Describe() = %s\nwant %s", ch.Describe(), tc.wantDescription)
			}
			applied := ch.Apply(cm)
			if applied.Data[Key] != ch.After || cm.Data[Key] != before {
				t.Errorf("Apply: got %q and the input became %q; want a copy holding the after text", applied.Data[Key], cm.Data[Key])
			}
			if again, err := EnableDNSCapture(applied); err != nil || again != nil {
				t.Errorf("second EnableDNSCapture = %+v, %v; want no change", again, err)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func decode(t *testing.T, text string) map[string]any {
	t.Helper()
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(text), &m); err != nil {
		t.Fatalf("decode %q: %v", text, err)
	}
	return m
}

// withoutCapture deletes ISTIO_META_DNS_CAPTURE from a decoded mesh config,
// and the maps on its way that were not there before the edit (absent or
// null, which protobuf reads alike), if empty.
func withoutCapture(m map[string]any, hadDefaultConfig, hadProxyMetadata bool) {
	dc, _ := m[defaultConfigKey].(map[string]any)
	pm, _ := dc[proxyMetadataKey].(map[string]any)
	delete(pm, DNSCaptureKey)
	if !hadProxyMetadata && len(pm) == 0 {
		delete(dc, proxyMetadataKey)
	}
	if !hadDefaultConfig && len(dc) == 0 {
		delete(m, defaultConfigKey)
	}
}

func TestRevert(t *testing.T) {
	const fromEmpty = "accessLogFile: /dev/stdout\n"
	const wasFalse = "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"false\"\n"
	tests := map[string]struct {
		data        map[string]string // before the edit; nil: no mesh key
		edit        func(after string) string
		want        map[string]string
		wantChanged bool
		wantErr     []string
	}{
		"untouched istio default": {
			data:        map[string]string{Key: fixture(t, "default.yaml")},
			want:        map[string]string{Key: fixture(t, "default.yaml")},
			wantChanged: true,
		},
		"untouched with comments": {
			data:        map[string]string{Key: fixture(t, "commented.yaml")},
			want:        map[string]string{Key: fixture(t, "commented.yaml")},
			wantChanged: true,
		},
		"untouched without the mesh key": {
			data:        map[string]string{"other": "x"},
			want:        map[string]string{"other": "x"},
			wantChanged: true,
		},
		"untouched previous value": {
			data:        map[string]string{Key: wasFalse},
			want:        map[string]string{Key: wasFalse},
			wantChanged: true,
		},
		"another edit stays, empty maps we made go": {
			data:        map[string]string{Key: fromEmpty},
			edit:        func(after string) string { return after + "trustDomain: example.org # moved\n" },
			want:        map[string]string{Key: fromEmpty + "trustDomain: example.org # moved\n"},
			wantChanged: true,
		},
		"another edit stays, maps we made stay when used": {
			data: map[string]string{Key: fromEmpty},
			edit: func(after string) string {
				after = strings.Replace(after, "/dev/stdout", `""`, 1)
				return strings.Replace(after, "  proxyMetadata:\n", "  proxyMetadata:\n    ISTIO_META_DNS_AUTO_ALLOCATE: \"true\"\n", 1)
			},
			want:        map[string]string{Key: "accessLogFile: \"\"\ndefaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_AUTO_ALLOCATE: \"true\"\n"},
			wantChanged: true,
		},
		"another edit of istio's default stays, proxyMetadata is {} again": {
			data: map[string]string{Key: fixture(t, "default.yaml")},
			edit: func(after string) string {
				return strings.Replace(after, "trustDomain: cluster.local", "trustDomain: example.org", 1)
			},
			want:        map[string]string{Key: strings.Replace(fixture(t, "default.yaml"), "trustDomain: cluster.local", "trustDomain: example.org", 1)},
			wantChanged: true,
		},
		"another edit stays, previous value comes back": {
			data:        map[string]string{Key: wasFalse},
			edit:        func(after string) string { return "accessLogFile: /dev/stdout\n" + after },
			want:        map[string]string{Key: "accessLogFile: /dev/stdout\n" + wasFalse},
			wantChanged: true,
		},
		"comments around our maps stay": {
			data: map[string]string{Key: "# head\naccessLogFile: /dev/stdout\n# tail\n"},
			edit: func(after string) string { return after + "trustDomain: example.org\n" },
			// yaml.v3 writes a blank line after a foot comment.
			want:        map[string]string{Key: "# head\naccessLogFile: /dev/stdout\n# tail\n\ntrustDomain: example.org\n"},
			wantChanged: true,
		},
		"someone's comment on a map we made stays": {
			data: map[string]string{Key: fromEmpty},
			edit: func(after string) string {
				return strings.Replace(after, "defaultConfig:", "# proxy defaults\ndefaultConfig:", 1) + "trustDomain: example.org\n"
			},
			want:        map[string]string{Key: fromEmpty + "# proxy defaults\ntrustDomain: example.org\n"},
			wantChanged: true,
		},
		"value changed by someone else stays": {
			data: map[string]string{Key: fromEmpty},
			edit: func(after string) string { return strings.Replace(after, `"true"`, `"false"`, 1) },
			want: map[string]string{Key: fromEmpty + "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"false\"\n"},
		},
		"value respelled by someone else stays": {
			data: map[string]string{Key: fromEmpty},
			edit: func(after string) string { return strings.Replace(after, `"true"`, `"True"`, 1) },
			want: map[string]string{Key: fromEmpty + "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"True\"\n"},
		},
		"value removed by someone else": {
			data: map[string]string{Key: fromEmpty},
			edit: func(string) string { return "trustDomain: example.org\n" },
			want: map[string]string{Key: "trustDomain: example.org\n"},
		},
		"made invalid by someone else": {
			data:    map[string]string{Key: fromEmpty},
			edit:    func(after string) string { return after + "defaultConfig: [\n" },
			wantErr: []string{"ConfigMap istio-system/istio key mesh", "not valid YAML", "undo again"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ch, err := EnableDNSCapture(configMap(Namespace, ConfigMapName, nil, tc.data))
			if err != nil || ch == nil {
				t.Fatalf("EnableDNSCapture(%q) = %v, %v", tc.data[Key], ch, err)
			}
			// The change comes back from the link record.
			b, err := json.Marshal(ch)
			if err != nil {
				t.Fatal(err)
			}
			var stored Change
			if err := json.Unmarshal(b, &stored); err != nil || !reflect.DeepEqual(stored, *ch) {
				t.Fatalf("change does not survive JSON: %s → %+v, %v", b, stored, err)
			}
			cur := ch.Apply(configMap(Namespace, ConfigMapName, nil, tc.data))
			if tc.edit != nil {
				cur.Data[Key] = tc.edit(cur.Data[Key])
			}
			got, changed, err := Revert(cur, stored)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Revert(%q) = %q, want an error", cur.Data[Key], got.Data)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Revert(%q): %v", cur.Data[Key], err)
			}
			if !reflect.DeepEqual(got.Data, tc.want) || changed != tc.wantChanged {
				t.Fatalf("Revert(%q) = %q, changed %v;\nwant %q, changed %v", cur.Data[Key], got.Data, changed, tc.want, tc.wantChanged)
			}
			again, changed, err := Revert(got, stored)
			if err != nil || changed || !reflect.DeepEqual(again.Data, got.Data) {
				t.Fatalf("second Revert(%q) = %q, changed %v, %v; want no change", got.Data[Key], again.Data, changed, err)
			}
		})
	}
}

func TestRevertOtherConfigMap(t *testing.T) {
	ch, err := EnableDNSCapture(configMap(Namespace, ConfigMapName, nil, nil))
	if err != nil || ch == nil {
		t.Fatalf("EnableDNSCapture = %v, %v", ch, err)
	}
	other := ch.Apply(configMap(Namespace, "istio-canary", nil, nil))
	if _, _, err := Revert(other, *ch); err == nil || !strings.Contains(err.Error(), "istio-system/istio, not istio-system/istio-canary") {
		t.Fatalf("Revert on istio-canary of a change to istio: %v, want an error naming both", err)
	}
}

func TestMeshID(t *testing.T) {
	tests := map[string]struct {
		mesh, want, wantErr string
	}{
		"values.global.meshID": {mesh: "trustDomain: td\ndefaultConfig:\n  meshId: mesh1\n", want: "mesh1"},
		"the trust domain":     {mesh: "trustDomain: example.org\n", want: "example.org"},
		"Istio's default":      {mesh: "", want: DefaultTrustDomain},
		"not a mapping":        {mesh: "- a\n", wantErr: "MeshConfig mapping"},
		"meshId not a string":  {mesh: "defaultConfig:\n  meshId: {a: b}\n", wantErr: "fix the mesh config"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := MeshID(tc.mesh)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("MeshID(%q) = %q, %v; want an error with %q", tc.mesh, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("MeshID(%q) = %q, %v; want %q", tc.mesh, got, err, tc.want)
			}
		})
	}
}
