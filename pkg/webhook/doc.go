// Package webhook owns mesh-webhook's admission plumbing: the mutating and
// validating handlers for ServiceEntries with a `.global` host (raw
// AdmissionReview safety, dry-run, enforcement mode, VIP claims), their
// metrics, and the server wiring of the mesh-webhook command (controller-runtime
// manager, TLS from files or self-managed, probes, leader-elected repair).
//
// The policy itself lives in pkg/validate and pkg/mutate, the shape of a
// ServiceEntry in pkg/rules; VIP uniqueness in pkg/vip. Each handler makes
// one pass: decode once, read the entry once (rules.ServiceEntry), default
// once, validate once, then claim. Nothing here imports the CLI's packages
// (pkg/builders, pkg/plugin, pkg/cli).
package webhook
