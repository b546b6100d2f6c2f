package rules

import (
	"strings"
	"testing"
)

func TestVisible(t *testing.T) {
	for _, tc := range []struct {
		ns       string
		exportTo []string
		from     string
		want     bool
	}{
		{"foo", nil, "bar", true},
		{"foo", []string{"*"}, "bar", true},
		{"foo", []string{"."}, "foo", true},
		{"foo", []string{"."}, "bar", false},
		{"foo", []string{"~"}, "foo", false},
		{"foo", []string{"bar"}, "bar", true},
		{"foo", []string{"bar", "."}, "baz", false},
	} {
		if got := Visible(tc.ns, tc.exportTo, tc.from); got != tc.want {
			t.Errorf("Visible(%s, %q, %s) = %v, want %v", tc.ns, tc.exportTo, tc.from, got, tc.want)
		}
	}
}

func TestVisibleTogether(t *testing.T) {
	for _, tc := range []struct {
		nsA     string
		exportA []string
		nsB     string
		exportB []string
		want    bool
	}{
		{"foo", nil, "bar", nil, true},
		{"foo", []string{"."}, "bar", []string{"."}, false},
		{"foo", []string{"."}, "bar", nil, true},
		{"foo", []string{"~"}, "bar", nil, false},
		{"foo", []string{"baz"}, "bar", []string{"baz"}, true},
		{"foo", []string{"."}, "foo", []string{"."}, true},
		{"foo", []string{"bar"}, "bar", []string{"."}, true},
		{"foo", []string{"~"}, "foo", []string{"~"}, false},
	} {
		if got := VisibleTogether(tc.nsA, tc.exportA, tc.nsB, tc.exportB); got != tc.want {
			t.Errorf("VisibleTogether(%s %q, %s %q) = %v, want %v", tc.nsA, tc.exportA, tc.nsB, tc.exportB, got, tc.want)
		}
		if got := VisibleTogether(tc.nsB, tc.exportB, tc.nsA, tc.exportA); got != tc.want {
			t.Errorf("VisibleTogether is not symmetric for %s %q, %s %q", tc.nsA, tc.exportA, tc.nsB, tc.exportB)
		}
	}
}

func TestEntrySelects(t *testing.T) {
	e := Entry{EndpointLabels: []map[string]string{{"cluster": "c2", "zone": "a"}, {"cluster": "c3"}}}
	for sel, want := range map[string]bool{"cluster=c2": true, "cluster=c3,zone=a": false, "cluster=c4": false, "": true} {
		m := map[string]string{}
		for kv := range strings.SplitSeq(sel, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				m[k] = v
			}
		}
		if got := e.Selects(m); got != want {
			t.Errorf("Selects(%s) = %v, want %v", sel, got, want)
		}
	}
	if !e.Carries("zone") || e.Carries("version") {
		t.Error("Carries: zone is on an endpoint, version on none")
	}
	if got := e.ClusterLabels(); len(got) != 2 || got[0] != "c2" || got[1] != "c3" {
		t.Errorf("ClusterLabels = %v", got)
	}
}
