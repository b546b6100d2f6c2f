package link

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/dns"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// Linker links clusters, one direction per Link.
type Linker struct {
	Request
	Log *StepLog
	// Factory gives the clients that ask the called cluster, as a new
	// reader token, what that token may do.
	Factory cli.Factory
}

// run is one direction of a link: from calls to.
type run struct {
	*Linker
	from, to   *cli.Cluster
	fromW, toW cli.Writer
	record     mesh.Record
	// saved is the record as from holds it now: the one an earlier link
	// wrote, or the last pending record this run wrote before a change.
	saved *mesh.Record
}

// Link makes from able to call the services of to: trust, DNS, gateway,
// multi-primary (when asked), then the finished record. It stops at the
// first step that fails; what it changed until then is on record.
func (l *Linker) Link(ctx context.Context, from, to *cli.Cluster) error {
	r := &run{Linker: l, from: from, to: to,
		fromW:  cli.Writer{Dynamic: from.Dynamic, DryRun: l.DryRun},
		toW:    cli.Writer{Dynamic: to.Dynamic, DryRun: l.DryRun},
		record: mesh.Record{Peer: to.Context, Server: to.Config.Host, LinkedAt: l.now().UTC()},
	}
	if err := r.resume(ctx); err != nil {
		return err
	}
	for _, step := range []func(context.Context) error{r.trust, r.dns, r.gateway, r.multiPrimary, r.save} {
		if err := step(ctx); err != nil {
			if r.saved != nil && r.saved.Pending && l.DryRun.Persists() {
				return fmt.Errorf("%w\nwhat link changed so far is recorded in ConfigMap %s/%s of %s: run link again to finish, or undo it with kubectl mesh unlink --from %s --to %s",
					err, rules.MeshNamespace, mesh.RecordName(to.Context), from.Context, from.Context, to.Context)
			}
			return err
		}
	}
	return nil
}

// resume starts from the record of an earlier link, if there is one: what
// it changed stays on record until unlink reverts it.
func (r *run) resume(ctx context.Context) error {
	prev, err := ReadRecord(ctx, r.from, r.to.Context)
	if err != nil || prev == nil {
		return err
	}
	r.saved = prev
	r.record.LinkedAt = prev.LinkedAt
	r.record.DNS = prev.DNS
	r.record.PendingDNS = prev.PendingDNS
	r.record.MeshConfig = prev.MeshConfig
	r.record.PeerGatewayCreated = prev.PeerGatewayCreated
	r.record.MultiPrimary = prev.MultiPrimary
	// An earlier link stopped half-way: take what it did write.
	return SettleDNS(ctx, r.from, &r.record)
}

// SettleDNS resolves a DNS edit that a link recorded but may have stopped
// before writing: the ConfigMap tells whether it was written.
func SettleDNS(ctx context.Context, c *cli.Cluster, rec *mesh.Record) error {
	if rec.PendingDNS == nil {
		return nil
	}
	t := rec.PendingDNS.Target
	cm, err := c.Kube.CoreV1().ConfigMaps(t.Namespace).Get(ctx, t.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		cm = nil
	case err != nil:
		return fmt.Errorf("%s: read ConfigMap %s (a DNS edit of an unfinished link): %w", c.Context, t, err)
	}
	rec.DNS, rec.PendingDNS = dns.Settle(rec.DNS, rec.PendingDNS, cm), nil
	return nil
}

// ReadRecord reads the record of c's link to peer; nil when there is none.
func ReadRecord(ctx context.Context, c *cli.Cluster, peer string) (*mesh.Record, error) {
	cm, err := c.Kube.CoreV1().ConfigMaps(rules.MeshNamespace).Get(ctx, mesh.RecordName(peer), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: read link record %s/%s: %w", c.Context, rules.MeshNamespace, mesh.RecordName(peer), err)
	}
	rec, err := mesh.RecordFromConfigMap(cm)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Context, err)
	}
	return &rec, nil
}

// savePending writes the record, marked pending, before a step changes
// anything, so that whatever happens next (a failed step, an interrupt,
// a killed process) unlink knows what to revert. Nothing is written when
// the record from holds already covers the change, so that running
// link again writes nothing.
func (r *run) savePending(ctx context.Context) error {
	rec := r.record
	rec.Pending = true
	if r.saved != nil && covers(*r.saved, rec) {
		return nil
	}
	if !r.DryRun.Writes() {
		r.saved = &rec
		return nil
	}
	if _, err := r.write(ctx, rec); err != nil {
		return fmt.Errorf("%s: write the link record before changing anything (nothing was changed): %w", r.from.Context, err)
	}
	r.saved = &rec
	return nil
}

// covers reports whether saved already records everything rec would have
// unlink undo. What differs only in bookkeeping (pending, a token's
// expiry) or lists objects saved lists too needs no write before a change.
func covers(saved, rec mesh.Record) bool {
	saved.Pending, rec.Pending = false, false
	if saved.MultiPrimary != nil && rec.MultiPrimary != nil {
		s, r := *saved.MultiPrimary, *rec.MultiPrimary
		for _, o := range r.NetworkLabelled {
			if !slices.Contains(s.NetworkLabelled, o) {
				return false
			}
		}
		s.NetworkLabelled, r.NetworkLabelled = nil, nil
		s.TokenExpires, r.TokenExpires = nil, nil
		saved.MultiPrimary, rec.MultiPrimary = &s, &r
	}
	return saved.SameLink(rec)
}

// save writes the finished link record into from.
func (r *run) save(ctx context.Context) error {
	r.record.Pending = false
	what := fmt.Sprintf("ConfigMap %s/%s", rules.MeshNamespace, mesh.RecordName(r.record.Peer))
	if r.saved != nil && r.saved.SameLink(r.record) {
		r.Log.Line(r.from.Context, OK, "record", what)
		return nil
	}
	cm, err := r.record.ConfigMap()
	if err != nil {
		return err
	}
	r.Log.Object(cm)
	nsFirst, err := r.write(ctx, r.record)
	if err != nil {
		return fmt.Errorf("%s: write link record: %w", r.from.Context, err)
	}
	rec := r.record
	r.saved = &rec
	if nsFirst {
		r.Log.Line(r.from.Context, Changed, "record", fmt.Sprintf("%s (namespace %s would be created first)", what, rules.MeshNamespace))
		return nil
	}
	r.Log.Line(r.from.Context, Changed, "record", fmt.Sprintf("%s: peer %s, gateway %s", what, r.record.Peer, r.record.Gateway))
	return nil
}

// write applies a record (and its namespace) in from. nsFirst: a server
// dry run could not check the record because its namespace would only be
// created first.
func (r *run) write(ctx context.Context, rec mesh.Record) (nsFirst bool, err error) {
	cm, err := rec.ConfigMap()
	if err != nil {
		return false, err
	}
	if _, err := r.fromW.Apply(ctx, gvrNamespace, mesh.NamespaceObject()); err != nil {
		return false, err
	}
	if _, err := r.fromW.Apply(ctx, gvrConfigMap, cm); err != nil {
		if r.DryRun == cli.DryRunServer && apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}
	return false, nil
}
