package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DryRun is a --dry-run strategy, as kubectl has them.
type DryRun int

const (
	// DryRunNone writes.
	DryRunNone DryRun = iota
	// DryRunClient writes nothing and sends no write: it prints what would
	// be sent.
	DryRunClient
	// DryRunServer sends every write with dryRun=All: the API server runs
	// admission and validation, and persists nothing.
	DryRunServer
)

// dryRunUsage is the help of every --dry-run flag.
const dryRunUsage = `Must be "none", "server", or "client". If client strategy, only print the objects that would be sent, without sending them. If server strategy, submit server-side requests without persisting the resource.`

// AddDryRunFlag adds --dry-run to a command that writes; a bare --dry-run
// means client, as in kubectl.
func AddDryRunFlag(cmd *cobra.Command, p *string) {
	if *p == "" {
		*p = "none"
	}
	cmd.Flags().StringVar(p, "dry-run", *p, dryRunUsage)
	cmd.Flags().Lookup("dry-run").NoOptDefVal = "client"
}

// ParseDryRun reads the value of --dry-run; "" is none.
func ParseDryRun(s string) (DryRun, error) {
	switch s {
	case "", "none":
		return DryRunNone, nil
	case "client":
		return DryRunClient, nil
	case "server":
		return DryRunServer, nil
	}
	return DryRunNone, fmt.Errorf(`--dry-run %q is not supported; use "none", "client" or "server"`, s)
}

// String is the flag's value.
func (d DryRun) String() string {
	switch d {
	case DryRunClient:
		return "client"
	case DryRunServer:
		return "server"
	}
	return "none"
}

// Writes says whether requests that write are sent at all (server dry runs
// send them, marked dry).
func (d DryRun) Writes() bool { return d != DryRunClient }

// Persists says whether writes are kept.
func (d DryRun) Persists() bool { return d == DryRunNone }

// Options is the dryRun field of write options.
func (d DryRun) Options() []string {
	if d == DryRunServer {
		return []string{metav1.DryRunAll}
	}
	return nil
}

// Suffix is what every table adds to an action (created, changed, …) under
// a dry run.
func (d DryRun) Suffix() string {
	switch d {
	case DryRunClient:
		return " (dry run)"
	case DryRunServer:
		return " (server dry run)"
	}
	return ""
}
