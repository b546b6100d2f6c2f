// Package clitest owns the fake clusters of kubectl mesh's unit tests: one
// Cluster is a typed clientset and a dynamic client that answer as one API
// server does where the commands rely on it —
//
//   - Kubernetes' own kinds are one store for both clients, so an object
//     written through one is read through the other;
//   - Istio's kinds and VIPClaims are kept by the dynamic client, which
//     can list every resource the commands list;
//   - a write marked dryRun=All is answered and not stored;
//   - a server-side apply creates or replaces the object (the fakes have no
//     field management) and gives it a new resourceVersion.
//
// Clusters hands them to the commands through a cli.Factory, with a
// kubeconfig naming one context per cluster. Writes, Reset, DryRunOf and
// Describe are how tests look at the requests the commands sent;
// CheckDryRun is the one check that they match a --dry-run strategy.
//
// It is imported only by _test.go files. It may import pkg/cli, pkg/rules
// and pkg/vip (for the resources it serves) and client-go's fakes; nothing
// of the engines or commands it tests.
package clitest
