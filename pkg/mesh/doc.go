// Package mesh owns what joins two clusters beyond DNS: the link record a
// cluster keeps for each peer (what `kubectl mesh link` changed, so that
// `unlink` removes exactly that), the cross-network and east-west Gateways,
// the multi-primary reader account and remote secret, and the mesh-wide
// checks behind `kubectl mesh status` with the report they build from what
// pkg/status fetched (report.go). Builders and checks here are pure
// functions: pkg/status fetches the facts and renders the report, pkg/link
// does link's I/O.
package mesh
