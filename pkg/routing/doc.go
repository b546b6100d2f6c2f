// Package routing owns version routing and locality policies across
// clusters, as pure functions: it parses the flags of `kubectl mesh route`
// (weights, matches, failover pairs, distribution weights), and builds and
// merges the VirtualService that routes a Service's versions to its local
// host's subsets or to the subsets of its `.global` host. It also finds the
// DestinationRule a user owns for a Service's local host, which export and
// route leave alone (UserRule). Which host serves a version is decided by
// the caller from what the cluster runs and what exports provide; the
// `.global` rules themselves come from pkg/builders.
package routing
