// Package cli is kubectl mesh's one way of doing command-line I/O, shared
// by every command:
//
//   - Factory and Cluster: every client of every command, for any context
//     of the kubeconfig, with the rate limit, timeout and test hooks as
//     fields;
//   - DryRun: --dry-run=none|client|server, parsed once in Complete, with
//     one wording in every table;
//   - PrintFlags: -o, built on cli-runtime's PrintFlags (yaml, json, name,
//     jsonpath, go-template, …) plus each command's own table;
//   - Writer: the one way objects are written — a create, or a server-side
//     apply under field manager kubectl-mesh, optionally preconditioned on a
//     resourceVersion, forcing ownership only of objects kubectl-mesh
//     manages — and deleted;
//   - RetryOnConflict and ForEach: the one retry loop for writes that lose a
//     race, and the one bounded worker pool.
//
// It knows nothing of meshes: the engines (pkg/export, pkg/link, …) and the
// commands (pkg/plugin) build on it.
package cli
