// Package status is the engine of `kubectl mesh status`. It owns the I/O
// of the report, on both sides of pkg/mesh's pure checks:
//
//   - fetching, through a cli.Factory with the request's timeout, what
//     the checks need of each cluster (gather.go): istio-system, cacerts,
//     DNS, the gateway, mesh-webhook, the Istio objects and link records;
//     the gateways' Services, pods and nodes for the routes (routes.go);
//     istiod's cluster name, the mesh ID and every remote secret, each
//     asked of the server it names as its token (multiprimary.go); and
//     whether each linked peer that is not reported on answers;
//   - building the report with mesh.BuildReport;
//   - rendering the report's tables to an io.Writer (table.go).
//
// It takes a cli.Factory and a Request of already parsed values; it parses
// no flag and leaves -o and the exit code to the command (pkg/plugin). It
// may import pkg/cli, pkg/mesh, pkg/link (IstioCoreDNS, IstiodFacts,
// ReaderAccess), pkg/gateway, pkg/pki, pkg/dns, pkg/meshconfig, pkg/rules
// and client-go; never pkg/plugin nor the webhook packages.
package status
