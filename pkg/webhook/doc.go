// Package webhook owns mesh-webhook's admission plumbing: the mutating and
// validating handlers for ServiceEntries with a `.global` host (raw
// AdmissionReview safety, dry-run, enforcement mode, VIP claims), their
// metrics, and the server wiring of the mesh-webhook command (controller-runtime
// manager, TLS from files or self-managed, probes, leader-elected repair).
//
// The policy itself lives in pkg/validate and pkg/mutate; VIP uniqueness in
// pkg/vip.
package webhook
