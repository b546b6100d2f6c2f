package webhook

import (
	"context"
	"net/netip"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

// Claims is what the handlers need from the VIP claims of a cluster; the
// mesh-webhook command passes *vip.Claims, tests webhooktest.Claims.
type Claims interface {
	// Allocate returns the VIP o holds for o.Host, or claims a new one.
	// dryRun never writes.
	Allocate(ctx context.Context, o vip.Owner, dryRun bool) (netip.Addr, error)
	// Claim makes addr held by o; a *vip.TakenError when another entry
	// holds it.
	Claim(ctx context.Context, addr netip.Addr, o vip.Owner, dryRun bool) error
	// ReleaseOwned frees the claims of a deleted entry o: those recorded for
	// its UID (or for no UID yet), never those of a newer entry of the same
	// name. dryRun only reports.
	ReleaseOwned(ctx context.Context, o vip.Owner, dryRun bool) ([]netip.Addr, error)
}

var _ Claims = (*vip.Claims)(nil)
