package export

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

// serviceWrites is what one Service's export wrote into a target, so that
// it can be undone: each object as it was before this run (nil: this run
// created it) and as this run last wrote it (nil: not written), and the VIP
// claim this run created.
type serviceWrites struct {
	svc     string
	se, dr  written
	vip     netip.Addr
	owner   vip.Owner
	claimed bool // this run created the claim
}

// written is what undo needs of one object of a Service.
type written struct {
	name        string
	gvr         schema.GroupVersionResource
	kind        string
	row         *cli.Row
	prior, last *unstructured.Unstructured
	wrote       bool
	// unsure: a write whose answer was lost (an interrupt or a broken
	// connection): it may have been made. Undo asks the cluster.
	unsure *unstructured.Unstructured
}

func (sw *serviceWrites) rows() []cli.Row { return []cli.Row{*sw.se.row, *sw.dr.row} }

// refused reports a Service that was not written at all.
func (sw *serviceWrites) refused(err error) []cli.Row {
	sw.se.row.Action, sw.se.row.Err = cli.Failed, err
	sw.dr.row.Action = cli.Skipped
	return sw.rows()
}

// put writes want over cur and records on o what undo needs. A retryable
// error before the last attempt records nothing: the next attempt writes
// again.
func (t *target) put(ctx context.Context, o *written, cur, want *unstructured.Unstructured, last bool) (*unstructured.Unstructured, error) {
	got, action, err := t.w.Put(ctx, o.gvr, cur, want)
	if err != nil {
		if !cli.LostRace(err) || last {
			if !o.wrote {
				o.prior = cur
			}
			if answerLost(err) {
				o.unsure = want
			}
		}
		return nil, fmt.Errorf("%s %s/%s: %w", o.kind, want.GetNamespace(), want.GetName(), err)
	}
	if !o.wrote {
		o.prior, o.wrote = cur, true
	}
	if action != cli.Unchanged {
		o.last = got
	}
	o.row.Action = mergeAction(o.row.Action, action)
	o.row.Object = got
	return got, nil
}

// answerLost tells a write that failed without an answer from the API
// server (cancelled, timed out, connection lost), which may have been made,
// from one the server refused.
func answerLost(err error) bool {
	var status apierrors.APIStatus
	return err != nil && !errors.As(err, &status)
}

// mergeAction keeps "created" over a later "configured" of the same run.
func mergeAction(prev, next cli.Action) cli.Action {
	if prev == cli.Created || prev == cli.Configured && next == cli.Unchanged {
		return prev
	}
	return next
}

// undo puts the target back as it was before this run wrote the Service:
// an object it created is deleted, one it changed is put back, a VIP
// claim it created is released. It runs in its own context, so that an
// interrupt does not stop it halfway. Objects someone changed since are
// left alone and reported.
func (t *target) undo(ctx context.Context, sw *serviceWrites) []error {
	if t.w.DryRun == cli.DryRunServer {
		return nil
	}
	uctx, cancel := cli.UndoContext(ctx)
	defer cancel()
	var errs []error
	// The entry first: no entry may outlive its rule.
	for _, o := range []written{sw.se, sw.dr} {
		if err := t.undoObject(uctx, o); err != nil {
			errs = append(errs, err)
		}
	}
	if sw.claimed {
		if err := t.vips.release(uctx, sw.vip, sw.owner); err != nil {
			errs = append(errs, fmt.Errorf("undo: release VIP %s: %w", sw.vip, err))
		} else {
			sw.se.row.VIP = sw.vip.String() + " (released)"
		}
	}
	return errs
}

// undoObject deletes the object o if this run created it, else puts back
// what it held before.
func (t *target) undoObject(ctx context.Context, o written) error {
	wrote, last := o.wrote, o.last
	if o.unsure != nil {
		// The object holds exactly what this run sent, and not as it
		// was before: the lost write was made.
		cur, err := t.w.Get(ctx, o.gvr, o.unsure.GetNamespace(), o.unsure.GetName())
		if err == nil && cur != nil && cli.Holds(cur, o.unsure) && (o.prior == nil || cur.GetResourceVersion() != o.prior.GetResourceVersion()) {
			wrote, last = true, cur
		}
	}
	switch {
	case !wrote || last == nil:
	case o.prior == nil:
		if err := t.w.Delete(ctx, o.gvr, last); err != nil {
			return fmt.Errorf("undo: delete %s %s/%s: %w", o.kind, last.GetNamespace(), last.GetName(), err)
		}
		o.row.Action, o.row.Object = cli.Deleted+" (undone)", nil
	default:
		got, _, err := t.w.Put(ctx, o.gvr, last, applyable(o.prior))
		if err != nil {
			return fmt.Errorf("undo: restore %s %s/%s: %w", o.kind, last.GetNamespace(), last.GetName(), err)
		}
		o.row.Action, o.row.Object = "restored (undone)", got
	}
	return nil
}
