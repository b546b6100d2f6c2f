package dns

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The scenario of issue 13: link, an administrator edits the DNS
// configuration around kubectl mesh's part, link again after istiocoredns
// got a new address, unlink. Undo must take out only kubectl mesh's part:
// the administrator's edit stays, and a global stub domain that existed
// before the first link comes back.
func TestUndoAfterRelinkKeepsOthersEdits(t *testing.T) {
	const ip1, ip2 = "10.96.0.42", "10.96.0.77"
	kubeadm := fixtures(t)["kubeadm.Corefile"]
	editBlock := func(s string) string { return strings.Replace(s, "cache 30 {", "cache 45 {", 1) }
	tests := map[string]struct {
		before *corev1.ConfigMap
		kind   Kind
		// edit is what the administrator does to the key between the links.
		edit func(string) string
		// want is the key after unlink.
		want string
	}{
		"coredns, another server block edited": {
			before: cm("kube-system", "coredns", nil, map[string]string{"Corefile": kubeadm}),
			kind:   CoreDNS,
			edit:   editBlock,
			want:   editBlock(kubeadm),
		},
		"coredns, a server block added": {
			before: cm("kube-system", "coredns", nil, map[string]string{"Corefile": kubeadm}),
			kind:   CoreDNS,
			edit:   func(s string) string { return "example.org:53 {\n    forward . 10.1.1.1\n}\n" + s },
			want:   "example.org:53 {\n    forward . 10.1.1.1\n}\n" + kubeadm,
		},
		"kube-dns, a stub domain added": {
			before: cm("kube-system", "kube-dns", nil, map[string]string{"stubDomains": `{"corp.example.com": ["10.150.0.1"]}`}),
			kind:   KubeDNS,
			edit: func(s string) string {
				return strings.Replace(s, `"corp.example.com"`, `"acme.test":["10.1.1.1"],"corp.example.com"`, 1)
			},
			want: `{"acme.test":["10.1.1.1"],"corp.example.com":["10.150.0.1"]}`,
		},
		"kube-dns, a global stub domain before the first link": {
			before: cm("kube-system", "kube-dns", nil, map[string]string{"stubDomains": `{"global": ["10.1.2.3"], "corp.example.com": ["10.150.0.1"]}`}),
			kind:   KubeDNS,
			edit: func(s string) string {
				return strings.Replace(s, `"corp.example.com"`, `"acme.test":["10.1.1.1"],"corp.example.com"`, 1)
			},
			want: `{"acme.test":["10.1.1.1"],"corp.example.com":["10.150.0.1"],"global":["10.1.2.3"]}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			target := Target{Namespace: tc.before.Namespace, Name: tc.before.Name, Kind: tc.kind}
			key := target.Key()
			first, err := Apply(tc.before, target, ip1)
			if err != nil || first == nil {
				t.Fatalf("first link: %v %v", first, err)
			}
			edited := first.Patched(tc.before)
			edited.Data[key] = tc.edit(edited.Data[key])
			second, err := Apply(edited, target, ip2)
			if err != nil || second == nil {
				t.Fatalf("second link: %v %v", second, err)
			}
			linked := second.Patched(edited)
			undone, err := Compose(first, second).Revert(linked)
			if err != nil {
				t.Fatalf("unlink: %v", err)
			}
			got := undone.Data[key]
			if tc.kind == KubeDNS {
				if !sameStubs(t, got, tc.want) {
					t.Fatalf("stubDomains after unlink = %s, want %s (before: %s, linked: %s)", got, tc.want, tc.before.Data[key], linked.Data[key])
				}
				return
			}
			if got != tc.want {
				t.Fatalf("Corefile after unlink:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// A global stub domain that pointed elsewhere before link comes back on
// undo, also when other stub domains were edited since.
func TestRevertKubeDNSRestoresPreviousGlobal(t *testing.T) {
	before := cm("kube-system", "kube-dns", nil, map[string]string{"stubDomains": `{"global": ["10.1.2.3"]}`})
	target := Target{Namespace: "kube-system", Name: "kube-dns", Kind: KubeDNS}
	ch, err := Apply(before, target, testIP)
	if err != nil || ch == nil {
		t.Fatalf("Apply: %v %v", ch, err)
	}
	linked := ch.Patched(before)
	linked.Data[StubDomainsKey] = `{"acme.test":["10.1.1.1"],"global":["` + testIP + `"]}`
	undone, err := ch.Revert(linked)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"acme.test":["10.1.1.1"],"global":["10.1.2.3"]}`; !sameStubs(t, undone.Data[StubDomainsKey], want) {
		t.Fatalf("stubDomains after undo = %s, want %s", undone.Data[StubDomainsKey], want)
	}
}

func sameStubs(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y map[string][]string
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("%q: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	return maps.EqualFunc(x, y, slices.Equal)
}

// A link writes its record before the DNS edit, so after a failure the
// record may hold an edit that was never written: Settle tells which one
// is in effect, and undoing an edit that was never written changes nothing.
func TestSettlePendingEdit(t *testing.T) {
	const ip1, ip2 = "10.96.0.42", "10.96.0.77"
	for name, before := range map[string]*corev1.ConfigMap{
		"coredns":                  cm("kube-system", "coredns", nil, map[string]string{"Corefile": fixtures(t)["kubeadm.Corefile"]}),
		"coredns, old proxy block": cm("kube-system", "coredns", nil, map[string]string{"Corefile": fixtures(t)["global-proxy.Corefile"]}),
		"kube-dns":                 cm("kube-system", "kube-dns", nil, map[string]string{"stubDomains": `{"global":["10.1.2.3"]}`}),
	} {
		t.Run(name, func(t *testing.T) {
			target := Target{Namespace: before.Namespace, Name: before.Name, Kind: KindOf(before)}
			first, err := Apply(before, target, ip1)
			if err != nil || first == nil {
				t.Fatalf("Apply: %v %v", first, err)
			}
			// The first link stopped before its write: nothing to undo.
			if got := Settle(nil, first, before); got != nil {
				t.Fatalf("Settle of an unwritten first edit = %+v, want nil", got)
			}
			if back, err := first.Revert(before); err != nil || !maps.Equal(back.Data, before.Data) {
				t.Fatalf("undo of an edit never written: %v\n%v", err, back.Data)
			}
			linked := first.Patched(before)
			second, err := Apply(linked, target, ip2)
			if err != nil || second == nil {
				t.Fatalf("Apply: %v %v", second, err)
			}
			for _, written := range []bool{false, true} {
				cur := linked
				if written {
					cur = second.Patched(linked)
				}
				settled := Settle(first, second, cur)
				back, err := settled.Revert(cur)
				if err != nil || !maps.Equal(back.Data, before.Data) {
					t.Fatalf("written %v: undo of the settled edit: %v\n%q\nwant\n%q", written, err, back.Data, before.Data)
				}
			}
		})
	}
}
