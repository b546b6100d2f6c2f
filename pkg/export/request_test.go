package export

import (
	"errors"
	"strings"
	"testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

func TestFailures(t *testing.T) {
	if err := failures([]cli.Row{{Cluster: "c1", Action: cli.Created}}, "export"); err != nil {
		t.Errorf("failures(no errors) = %v", err)
	}
	err := failures([]cli.Row{
		{Cluster: "c9", Action: cli.Failed, Err: errors.New("context unknown")},
		{Cluster: "c1", Kind: rules.KindServiceEntry, Namespace: "bar", Name: "x", Action: cli.Failed, Err: errors.New("boom")},
	}, "export")
	if err == nil || !strings.Contains(err.Error(), "c9: context unknown") || !strings.Contains(err.Error(), "c1: serviceentry bar/x: boom") {
		t.Errorf("failures() = %v", err)
	}
}
