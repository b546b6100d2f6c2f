// Package export is the engine of `kubectl mesh export` and `kubectl mesh
// unexport`. It owns what one run does, in one pass downwards:
//
//   - the source: the Services, their ports and versions, the gateway and
//     its locality, the DestinationRules of the namespace (source.go);
//   - per target, the plan (the pure builders of pkg/builders), the VIP
//     (vip.go: claimed through pkg/vip where VIPClaims are served), the
//     commit through cli.Writer, rule before entry, and the exact undo of
//     what the run wrote there (target.go, service.go, undo.go);
//   - the version rule in the source (local.go);
//   - unexport: shrinking or deleting each pair, freeing the VIP, and
//     cleaning the source's rule (unexport.go).
//
// It takes a cli.Factory and a request of already parsed values, and
// answers with rows (cli.Row) and an error that says what failed; it
// parses no flag and prints no table (warnings go to the io.Writer the
// request names). It may import pkg/cli, pkg/builders, pkg/routing,
// pkg/rules, pkg/gateway, pkg/vip and client-go; never pkg/plugin nor the
// webhook packages.
package export
