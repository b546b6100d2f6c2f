package webhook

import (
	"context"
	"fmt"
	"net/netip"
)

// Owner is the ServiceEntry a VIP is claimed for. UID is empty at CREATE
// admission: the API server assigns it after the webhooks ran.
type Owner struct {
	Namespace, Name, UID, Host string
}

func (o Owner) String() string { return o.Namespace + "/" + o.Name }

// Claims is what the handlers need from the VIP claims of a cluster; the
// mesh-webhook command backs it with pkg/vip.
type Claims interface {
	// Allocate returns the VIP o holds for o.Host, or claims a new one.
	// dryRun never writes.
	Allocate(ctx context.Context, o Owner, dryRun bool) (netip.Addr, error)
	// Claim makes addr held by o; a *TakenError when another entry holds it.
	Claim(ctx context.Context, addr netip.Addr, o Owner, dryRun bool) error
}

// TakenError is returned by Claims.Claim when another ServiceEntry holds the
// address; its message names the holder and the fix.
type TakenError struct {
	Addr   netip.Addr
	Holder string
	Err    error // the underlying error, for its wording
}

func (e *TakenError) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return fmt.Sprintf("%s is already claimed by ServiceEntry %s; pick another address or leave addresses empty to have one allocated", e.Addr, e.Holder)
}

func (e *TakenError) Unwrap() error { return e.Err }
