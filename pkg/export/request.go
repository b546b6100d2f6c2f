package export

import (
	"fmt"
	"io"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/gateway"
)

// The client-side rate limit of export and unexport: one run writes a few
// objects per Service and cluster, which kubectl's defaults would crawl
// through.
const (
	qps   = 500
	burst = 1000
)

// serviceWorkers is how many Services of one cluster are written at once;
// the clusters themselves run in parallel.
const serviceWorkers = 16

// Request is one export, its flags parsed and defaulted.
type Request struct {
	// From is the source context, To the target contexts.
	From string
	To   []string
	// Services names the Services to export; else Selector or All picks
	// them.
	Services []string
	Selector string
	All      bool
	// Namespace is the Services' namespace in the source; TargetNamespace
	// that of the entries and rules in the targets.
	Namespace       string
	TargetNamespace string
	CreateNamespace bool
	// ClusterName is the source's name in endpoint labels and subsets.
	ClusterName  string
	VersionLabel string
	// Gateway says which Service is the source's gateway; GatewayAddress,
	// when set, is its address instead of the discovered one.
	Gateway        gateway.Options
	GatewayAddress *gateway.Address
	ClusterDomain  string
	// Locality is REGION[/ZONE] of the source's gateway; "" discovers it.
	Locality string
	DryRun   cli.DryRun
	// Warnings receives a "Warning: …" line per warning (nil: dropped).
	Warnings io.Writer
}

// UnexportRequest is one unexport, its flags parsed and defaulted.
type UnexportRequest struct {
	From            string
	To              []string
	Services        []string
	All             bool
	Namespace       string
	TargetNamespace string
	ClusterName     string
	DryRun          cli.DryRun
}

// Result is what a run did: one row per object and cluster, and Err,
// which lists what failed (the rows say where) or says the run was
// interrupted.
type Result struct {
	Rows []cli.Row
	Err  error
}

func warn(w io.Writer, format string, a ...any) {
	if w != nil {
		fmt.Fprintf(w, "Warning: "+format+"\n", a...)
	}
}
