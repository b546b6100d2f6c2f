package dns

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func cm(ns, name string, labels, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}, Data: data}
}

func TestApplyRevert(t *testing.T) {
	corefile := fixtures(t)["kubeadm.Corefile"]
	tests := map[string]struct {
		cm        *corev1.ConfigMap
		kind      Kind
		wantAfter string
	}{
		"kube-dns with stub domains": {
			cm:        cm("kube-system", "kube-dns", nil, map[string]string{"stubDomains": `{"corp.example.com": ["10.150.0.1"]}`, "upstreamNameservers": `["8.8.8.8"]`}),
			kind:      KubeDNS,
			wantAfter: `{"corp.example.com":["10.150.0.1"],"global":["10.96.0.42"]}`,
		},
		"kube-dns without stub domains": {
			cm:        cm("kube-system", "kube-dns", nil, nil),
			kind:      KubeDNS,
			wantAfter: `{"global":["10.96.0.42"]}`,
		},
		"coredns": {
			cm:        cm("kube-system", "coredns", nil, map[string]string{"Corefile": corefile}),
			kind:      CoreDNS,
			wantAfter: corefile + Block(testIP),
		},
		"coredns-custom": {
			cm:        cm("kube-system", "coredns-custom", nil, map[string]string{"log.override": "log\n"}),
			kind:      CoreDNSCustom,
			wantAfter: Block(testIP),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := KindOf(tc.cm); got != tc.kind {
				t.Fatalf("KindOf = %s, want %s", got, tc.kind)
			}
			target := Target{Namespace: tc.cm.Namespace, Name: tc.cm.Name, Kind: tc.kind}
			ch, err := Apply(tc.cm, target, testIP)
			if err != nil || ch == nil {
				t.Fatalf("Apply: %v %v", ch, err)
			}
			patched := ch.Patched(tc.cm)
			if got := patched.Data[target.Key()]; got != tc.wantAfter {
				t.Fatalf("after:\n%q\nwant\n%q", got, tc.wantAfter)
			}
			fwd, err := Forwarding(patched, target)
			if err != nil || len(fwd) != 1 || fwd[0] != testIP {
				t.Fatalf("Forwarding = %v %v", fwd, err)
			}
			if again, err := Apply(patched, target, testIP); err != nil || again != nil {
				t.Fatalf("second Apply = %+v %v, want no change", again, err)
			}
			back, err := ch.Revert(patched)
			if err != nil {
				t.Fatal(err)
			}
			if !equalData(back.Data, tc.cm.Data) {
				t.Fatalf("revert:\n%v\nwant\n%v", back.Data, tc.cm.Data)
			}
		})
	}
}

func equalData(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestRevertKubeDNSAfterOtherEdits(t *testing.T) {
	orig := cm("kube-system", "kube-dns", nil, map[string]string{"stubDomains": `{"corp.example.com": ["10.150.0.1"]}`})
	target := Target{Namespace: "kube-system", Name: "kube-dns", Kind: KubeDNS}
	ch, err := Apply(orig, target, testIP)
	if err != nil {
		t.Fatal(err)
	}
	patched := ch.Patched(orig)
	patched.Data["stubDomains"] = `{"corp.example.com":["10.150.0.1"],"global":["10.96.0.42"],"acme.test":["10.1.1.1"]}`
	back, err := ch.Revert(patched)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Data["stubDomains"]; got != `{"acme.test":["10.1.1.1"],"corp.example.com":["10.150.0.1"]}` {
		t.Fatalf("revert kept others wrong: %s", got)
	}
	patched.Data["stubDomains"] = `{"global":["10.9.9.9"]}`
	if _, err := ch.Revert(patched); err == nil || !strings.Contains(err.Error(), "no longer points") {
		t.Fatalf("want refusal, got %v", err)
	}
}

func TestDetect(t *testing.T) {
	tests := map[string]struct {
		objs          []*corev1.ConfigMap
		ns, name      string
		want          Target
		wantWarning   bool
		wantErrSubstr string
	}{
		"coredns": {
			objs: []*corev1.ConfigMap{cm("kube-system", "coredns", nil, map[string]string{"Corefile": ".:53 {\n}\n"})},
			want: Target{"kube-system", "coredns", CoreDNS},
		},
		"kube-dns": {
			objs: []*corev1.ConfigMap{cm("kube-system", "kube-dns", nil, map[string]string{"stubDomains": "{}"})},
			want: Target{"kube-system", "kube-dns", KubeDNS},
		},
		"reconciled coredns warns": {
			objs:        []*corev1.ConfigMap{cm("kube-system", "coredns", map[string]string{ReconcileLabel: "Reconcile"}, map[string]string{"Corefile": ".:53 {\n}\n"})},
			want:        Target{"kube-system", "coredns", CoreDNS},
			wantWarning: true,
		},
		"explicit custom": {
			objs: []*corev1.ConfigMap{cm("kube-system", "coredns", nil, map[string]string{"Corefile": ".:53 {\n}\n"}), cm("kube-system", "coredns-custom", nil, nil)},
			ns:   "kube-system", name: "coredns-custom",
			want: Target{"kube-system", "coredns-custom", CoreDNSCustom},
		},
		"explicit missing": {
			ns: "kube-system", name: "coredns-custom",
			wantErrSubstr: "--dns-configmap",
		},
		"none": {
			wantErrSubstr: "--dns-configmap",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			kube := fake.NewClientset()
			for _, o := range tc.objs {
				if err := kube.Tracker().Add(o); err != nil {
					t.Fatal(err)
				}
			}
			_, got, warnings, err := Detect(t.Context(), kube, tc.ns, tc.name)
			if tc.wantErrSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSubstr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErrSubstr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Detect = %+v %v, want %+v", got, err, tc.want)
			}
			if (len(warnings) > 0) != tc.wantWarning {
				t.Fatalf("warnings = %v", warnings)
			}
		})
	}
}

func TestParseTarget(t *testing.T) {
	for in, ok := range map[string]bool{"kube-system/coredns-custom": true, "coredns": false, "/x": false, "a/b/c": false} {
		t.Run(in, func(t *testing.T) {
			_, _, err := ParseTarget(in)
			if (err == nil) != ok {
				t.Fatalf("ParseTarget(%q) = %v", in, err)
			}
		})
	}
}
