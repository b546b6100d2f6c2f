package cli

import (
	"errors"
	"strings"
	"testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

func TestFailures(t *testing.T) {
	if err := Failures([]Row{{Cluster: "c1", Action: Created}}, "export"); err != nil {
		t.Errorf("Failures(no errors) = %v", err)
	}
	err := Failures([]Row{
		{Cluster: "c9", Action: Failed, Err: errors.New("context unknown")},
		{Cluster: "c1", Kind: rules.KindServiceEntry, Namespace: "bar", Name: "x", Action: Failed, Err: errors.New("boom")},
		{Cluster: "c1", Kind: rules.KindServiceEntry, Namespace: "bar", Name: "x", Action: Failed, Err: errors.New("boom")},
	}, "route")
	if err == nil || !strings.Contains(err.Error(), "route failed for 2 object(s)") || !strings.Contains(err.Error(), "c9: context unknown") || !strings.Contains(err.Error(), "c1: serviceentry bar/x: boom") {
		t.Errorf("Failures() = %v, want both failures, the same one once", err)
	}
}
