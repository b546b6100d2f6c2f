// Package vip owns the uniqueness of `.global` VIPs in a cluster: the
// VIPClaim custom resource (one cluster-scoped object per allocated address,
// named after it), allocation and claiming through it, release when an
// entry goes, an optional in-memory view of existing claims (fed by a watch
// of their metadata: the owner is repeated in labels and annotations) that
// keeps allocation at a constant number of API calls, and the repair loop
// that removes orphan claims, adopts ServiceEntries that existed before the
// claims did, and reports duplicate VIPs. A claim reused by its holder is
// touched, so that the repair loop cannot take it away while an entry of
// the same name is being re-created.
//
// Uniqueness comes from the API server alone: creating a claim is the atomic
// reservation and AlreadyExists means taken, the way Kubernetes' own
// IPAddress allocator works. Caches only decide which addresses are worth
// trying first; they never decide that an address is free.
package vip
