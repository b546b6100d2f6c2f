// Package link is the engine of kubectl mesh link and unlink. It owns the
// steps that make one cluster able to call the services of another — trust
// (both Istio CAs share a root), DNS (the global zone forwarded to
// istiocoredns, or Istio's DNS proxying), the peer's gateway and its
// *.local passthrough Gateway, and with multi-primary the remote secret,
// the reader and its token, and the network labels — and the link record:
// what each step changes is recorded (marked pending) before it is
// changed, so that unlink undoes exactly that, after a finished link as
// after one that failed or was interrupted. Each step prints one line
// through a StepLog: ok, changed, skipped or action needed, with why.
//
// The engine takes the clusters (cli.Cluster, from cli.Factory) and a
// parsed Request; it never reads flags. It writes through cli.Writer and
// honours cli.DryRun. It may import pkg/cli, pkg/mesh, pkg/dns,
// pkg/meshconfig, pkg/gateway, pkg/pki and pkg/rules; never pkg/plugin,
// which holds the commands, nor the webhook's packages.
package link
