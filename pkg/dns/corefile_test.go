package dns

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const testIP = "10.96.0.42"

func fixtures(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("testdata/*.Corefile")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("want at least five Corefile fixtures, have %d", len(files))
	}
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = string(b)
	}
	return out
}

func withoutGlobal(bs []ServerBlock) []ServerBlock {
	return slices.DeleteFunc(slices.Clone(bs), ServerBlock.ServesGlobal)
}

func TestCorefileRoundTrip(t *testing.T) {
	for name, in := range fixtures(t) {
		t.Run(name, func(t *testing.T) {
			before, err := ParseCorefile(in)
			if err != nil {
				t.Fatal(err)
			}
			out, edit, err := EnsureGlobal(in, testIP)
			if err != nil {
				t.Fatal(err)
			}
			if edit == nil {
				t.Fatalf("no edit on\n%s", in)
			}
			after, err := ParseCorefile(out)
			if err != nil {
				t.Fatalf("edited Corefile does not parse: %v\n%s", err, out)
			}
			if !slices.EqualFunc(withoutGlobal(before), withoutGlobal(after), ServerBlock.Equal) {
				t.Fatalf("meaning changed:\nbefore:\n%s\nafter:\n%s", Canonical(before), Canonical(after))
			}
			fwd, err := GlobalForwarding(out)
			if err != nil || !slices.Equal(fwd, []string{testIP}) {
				t.Fatalf("global forwards to %v (%v), want %s:\n%s", fwd, err, testIP, out)
			}
			var g []ServerBlock
			for _, b := range after {
				if b.ServesGlobal() {
					g = append(g, b)
				}
			}
			if len(g) != 1 || !slices.Equal(g[0].Directives["cache"], []string{"cache", "30"}) || len(g[0].Directives["errors"]) != 1 || g[0].Directives["proxy"] != nil {
				t.Fatalf("global block = %+v, want errors, cache 30, forward", g)
			}
			again, edit2, err := EnsureGlobal(out, testIP)
			if err != nil || edit2 != nil || again != out {
				t.Fatalf("second run changed the Corefile (edit %+v, err %v):\n%s", edit2, err, again)
			}
			restored, err := RemoveGlobal(out, *edit)
			if err != nil {
				t.Fatal(err)
			}
			if restored != in {
				t.Fatalf("restore is not byte for byte:\n--- got\n%q\n--- want\n%q", restored, in)
			}
		})
	}
}

func TestEnsureGlobalUpdatesForwarding(t *testing.T) {
	in := fixtures(t)["kubeadm.Corefile"]
	first, e1, err := EnsureGlobal(in, testIP)
	if err != nil {
		t.Fatal(err)
	}
	second, e2, err := EnsureGlobal(first, "10.96.0.43")
	if err != nil || e2 == nil {
		t.Fatalf("new IP not written: %v", err)
	}
	if strings.Count(second, "global:53") != 1 || !strings.Contains(second, "forward . 10.96.0.43") {
		t.Fatalf("want one updated block:\n%s", second)
	}
	// Undo in reverse order gets back to the original.
	back, err := RemoveGlobal(second, *e2)
	if err != nil || back != first {
		t.Fatalf("undo of the update: %v\n%s", err, back)
	}
	back, err = RemoveGlobal(back, *e1)
	if err != nil || back != in {
		t.Fatalf("undo of the add: %v\n%s", err, back)
	}
}

func TestEnsureGlobalErrors(t *testing.T) {
	tests := map[string]struct {
		corefile, ip, want string
	}{
		"not an IP":          {".:53 {\n    errors\n}\n", "istiocoredns", "not an IP"},
		"broken":             {".:53 {\n    errors\n", testIP, "parse Corefile"},
		"shared zone block":  {"global:53 example.org:53 {\n    errors\n}\n", testIP, "together with other zones"},
		"two global blocks":  {"global:53 {\n    errors\n}\nglobal. {\n    errors\n}\n", testIP, "more than one"},
		"block shares lines": {".:53 {\n    errors\n} global:53 {\n    errors\n}\n", testIP, "shares a line"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := EnsureGlobal(tc.corefile, tc.ip)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("EnsureGlobal(%q) error = %v, want %q", tc.corefile, err, tc.want)
			}
		})
	}
}

func TestRemoveGlobalRefusesChangedBlock(t *testing.T) {
	in := fixtures(t)["eks.Corefile"]
	out, edit, err := EnsureGlobal(in, testIP)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(out, "cache 30\n    forward . "+testIP, "cache 60\n    forward . "+testIP, 1)
	got, err := RemoveGlobal(changed, *edit)
	if err == nil || got != changed {
		t.Fatalf("want refusal and no change, got err %v:\n%s", err, got)
	}
	// Other blocks edited meanwhile: the global block still comes out.
	edited := strings.Replace(out, "cache 30\n    loop", "cache 45\n    loop", 1)
	got, err = RemoveGlobal(edited, *edit)
	if err != nil || got != strings.Replace(in, "cache 30\n    loop", "cache 45\n    loop", 1) {
		t.Fatalf("remove after unrelated edit: %v\n%s", err, got)
	}
}

func TestIsGlobalKey(t *testing.T) {
	tests := map[string]bool{
		"global": true, "global.": true, "global:53": true, "global.:53": true, "dns://global:53": true, "GLOBAL:53": true,
		"global:5353": false, ".:53": false, "global.example.com:53": false, "svc.global": false,
	}
	for key, want := range tests {
		t.Run(key, func(t *testing.T) {
			if got := isGlobalKey(key); got != want {
				t.Fatalf("isGlobalKey(%q) = %v, want %v", key, got, want)
			}
		})
	}
}
