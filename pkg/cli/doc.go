// Package cli is kubectl mesh's one way of doing command-line I/O, shared
// by every command:
//
//   - Factory and Cluster: every client of every command — for any context
//     of the kubeconfig, as a token alone (AsToken) or from a remote
//     secret's kubeconfig (ClusterFromKubeconfig) — with the rate limit,
//     timeout and test hooks as fields;
//   - Options and RunE: Complete → Validate → Run, the one sequence of
//     every command;
//   - DryRun: --dry-run=none|client|server, parsed once in Complete, with
//     one wording in every table;
//   - PrintFlags: -o, built on cli-runtime's PrintFlags (yaml, json, name,
//     jsonpath, go-template, …) plus each command's own table;
//   - Writer: the one way objects are written — a create, or a server-side
//     apply under field manager kubectl-mesh, optionally preconditioned on a
//     resourceVersion, forcing ownership only of objects kubectl-mesh
//     manages — and deleted;
//   - RetryOnConflict and ForEach: the one retry loop for writes that lose a
//     race, and the one bounded worker pool;
//   - Row, PrintRows and Failures: the table of objects and what was done
//     to them, and the exit error it gives; NotifyContext and UndoContext:
//     what an interrupt stops and what it must not.
//
// Package clitest gives unit tests fake clusters that answer as an API
// server does (dry runs, server-side apply, one store for the typed and
// the dynamic client).
//
// It knows nothing of meshes (it imports only pkg/rules, for the field
// manager and the managed-by label): the engines (pkg/export, pkg/link,
// pkg/route, pkg/status, pkg/certs) and the commands (pkg/plugin) build on
// it.
package cli
