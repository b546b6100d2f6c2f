package cli

import (
	"strings"
	"testing"
)

func TestParseDryRun(t *testing.T) {
	for in, want := range map[string]DryRun{"": DryRunNone, "none": DryRunNone, "client": DryRunClient, "server": DryRunServer} {
		if got, err := ParseDryRun(in); err != nil || got != want {
			t.Errorf("ParseDryRun(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseDryRun("true"); err == nil || !strings.Contains(err.Error(), `--dry-run "true"`) {
		t.Errorf("ParseDryRun(true) = %v, want an error naming the flag and value", err)
	}
	if DryRunClient.Writes() || !DryRunServer.Writes() || DryRunServer.Persists() || DryRunServer.Options() == nil || DryRunNone.Options() != nil {
		t.Error("the strategies send the wrong requests")
	}
}
