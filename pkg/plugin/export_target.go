package plugin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

// serviceWorkers is how many Services of one target cluster are written at
// once; target clusters themselves run in parallel.
const serviceWorkers = 16

// targetResult is the outcome of one target cluster.
type targetResult struct {
	cluster   string
	rows      []cli.Row
	warnings  []string
	succeeded map[string]bool // service → its entry and rule are in place
}

// exportTarget is one target cluster during a run.
type exportTarget struct {
	o       *ExportOptions
	src     *source
	context string
	kube    kubernetes.Interface
	w       cli.Writer
	entries map[string]*unstructured.Unstructured // by namespace/name
	byHost  map[string][]string                   // host → namespace/name of entries
	rules   map[string]*unstructured.Unstructured
	vips    *vipAllocator
}

func (o *ExportOptions) exportTo(ctx context.Context, target string, src *source) targetResult {
	res := targetResult{cluster: target, succeeded: map[string]bool{}}
	fail := func(err error) targetResult {
		if cause := cli.Interrupted(ctx); cause != nil {
			err = fmt.Errorf("%w before any object was written here", cause)
		}
		res.rows = append(res.rows, cli.Row{Cluster: target, Action: cli.Failed, Err: err})
		return res
	}
	_, cfg, err := restConfigFor(o.factory, target, o.WrapConfig)
	if err != nil {
		return fail(fmt.Errorf("--to: %w", err))
	}
	if o.DryRun == DryRunClient {
		return o.planClientDryRun(target, src)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fail(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fail(err)
	}
	t := &exportTarget{o: o, src: src, context: target, kube: kube, w: cli.Writer{Dynamic: dyn, DryRun: parsedDryRun(o.DryRun)}}
	if row, err := t.ensureNamespace(ctx); err != nil {
		return fail(err)
	} else if row != nil {
		res.rows = append(res.rows, *row)
	}
	if err := t.load(ctx); err != nil {
		return fail(err)
	}
	if !t.vips.usesClaims() {
		res.warnings = append(res.warnings, warnNoClaims)
	}
	t.run(ctx, &res)
	cli.SortRows(res.rows)
	return res
}

// load reads what the target holds that every Service of the run is
// checked against.
func (t *exportTarget) load(ctx context.Context) error {
	dyn, o := t.w.Dynamic, t.o
	var err error
	// One List per kind for every Service of the run. Entries of all
	// namespaces: without VIPClaims they are what VIP uniqueness is
	// checked against.
	if t.entries, err = listByName(ctx, dyn, rules.ServiceEntryGVR, ""); err != nil {
		return fmt.Errorf("list ServiceEntries: %w; are Istio's CRDs installed?", err)
	}
	t.byHost = map[string][]string{}
	for _, key := range sortedKeys(t.entries) {
		hosts, _, _ := unstructured.NestedStringSlice(t.entries[key].Object, "spec", "hosts")
		for _, h := range hosts {
			t.byHost[h] = append(t.byHost[h], key)
		}
	}
	if t.rules, err = listByName(ctx, dyn, rules.DestinationRuleGVR, o.TargetNamespace); err != nil {
		return fmt.Errorf("list DestinationRules in namespace %s: %w", o.TargetNamespace, err)
	}
	t.vips, err = newVIPAllocator(ctx, dyn, t.entries, (t.w.DryRun == cli.DryRunServer))
	return err
}

// run exports the source's Services on a few workers. Interrupted before
// every Service was in place, the target goes back to what it was, not to
// a mix of written and missing Services.
func (t *exportTarget) run(ctx context.Context, res *targetResult) {
	var (
		mu         sync.Mutex
		wg         sync.WaitGroup
		jobs       = make(chan exportService)
		done       []*serviceWrites
		notStarted int
	)
	for range serviceWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for svc := range jobs {
				rows, warnings, sw := t.exportService(ctx, svc)
				mu.Lock()
				if sw != nil {
					done = append(done, sw)
				} else {
					res.rows = append(res.rows, rows...)
				}
				res.warnings = append(res.warnings, warnings...)
				res.succeeded[svc.Name] = sw != nil
				mu.Unlock()
			}
		}()
	}
	for _, svc := range t.src.Services {
		switch {
		case svc.Err != nil:
		case ctx.Err() != nil:
			notStarted++
		default:
			jobs <- svc
		}
	}
	close(jobs)
	wg.Wait()
	if cause := cli.Interrupted(ctx); cause != nil && (notStarted > 0 || len(done) < len(res.succeeded)) {
		for _, sw := range done {
			if errs := t.undo(ctx, sw); len(errs) > 0 {
				sw.se.row.Err = fmt.Errorf("%w (%v)", cause, errs)
			}
			res.succeeded[sw.svc] = false
		}
		res.rows = append(res.rows, cli.Row{Cluster: t.context, Action: cli.Failed, Err: fmt.Errorf("%w: what this run wrote here is undone", cause)})
	}
	for _, sw := range done {
		res.rows = append(res.rows, *sw.se.row, *sw.dr.row)
	}
}

func (t *exportTarget) ensureNamespace(ctx context.Context) (*cli.Row, error) {
	ns := t.o.TargetNamespace
	_, err := t.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	switch {
	case err == nil:
		return nil, nil
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("namespace %s: %w", ns, err)
	case !t.o.CreateNamespace:
		return nil, fmt.Errorf("namespace %s not found; create it, pass --create-namespace, or choose another with --target-namespace", ns)
	}
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{rules.ManagedByLabel: rules.ManagedByValue}}}
	if _, err := t.kube.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{FieldManager: rules.FieldManager, DryRun: t.w.DryRun.Options()}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create namespace %s: %w", ns, err)
	}
	return &cli.Row{Cluster: t.context, Kind: "Namespace", Name: ns, Action: cli.Created}, nil
}

func (t *exportTarget) thisSource(svc exportService) builders.Source {
	return builders.Source{Cluster: t.src.Name, GatewayHost: t.src.Gateway.Host, GatewayPort: t.src.Gateway.Port, Versions: svc.Versions, Locality: t.src.Locality}
}

func (t *exportTarget) export(svc exportService, sources []builders.Source, vipAddr string) builders.Export {
	return builders.Export{
		Name: svc.Name, Namespace: t.o.namespace, TargetNamespace: t.o.TargetNamespace,
		Ports: svc.Ports, Sources: sources, VIP: vipAddr, ClusterDomain: t.o.ClusterDomain,
	}
}

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
	gvr         schema.GroupVersionResource
	kind        string
	row         *cli.Row
	prior, last *unstructured.Unstructured
	wrote       bool
	// unsure: a write whose answer was lost (an interrupt or a broken
	// connection): it may have been made. Undo asks the cluster.
	unsure *unstructured.Unstructured
}

// undo puts the target back as it was before this run wrote the Service:
// an object it created is deleted, one it changed is put back, a VIP
// claim it created is released. It runs in its own context, so that an
// interrupt does not stop it halfway. Objects someone changed since are
// left alone and reported.
func (t *exportTarget) undo(ctx context.Context, sw *serviceWrites) []error {
	if t.w.DryRun == cli.DryRunServer {
		return nil
	}
	uctx, cancel := cli.UndoContext(ctx)
	defer cancel()
	var errs []error
	undoObject := func(o written) {
		gvr, kind, row, wrote, prior, last, unsure := o.gvr, o.kind, o.row, o.wrote, o.prior, o.last, o.unsure
		if unsure != nil {
			// The object holds exactly what this run sent, and not as it
			// was before: the lost write was made.
			cur, err := t.w.Get(uctx, gvr, unsure.GetNamespace(), unsure.GetName())
			if err == nil && cur != nil && cli.Holds(cur, unsure) && (prior == nil || cur.GetResourceVersion() != prior.GetResourceVersion()) {
				wrote, last = true, cur
			}
		}
		switch {
		case !wrote || last == nil:
		case prior == nil:
			if err := t.w.Delete(uctx, gvr, last); err != nil {
				errs = append(errs, fmt.Errorf("undo: delete %s %s/%s: %w", kind, last.GetNamespace(), last.GetName(), err))
				return
			}
			row.Action, row.Object = cli.Deleted+" (undone)", nil
		default:
			got, _, err := t.w.Put(uctx, gvr, last, applyable(prior))
			if err != nil {
				errs = append(errs, fmt.Errorf("undo: restore %s %s/%s: %w", kind, last.GetNamespace(), last.GetName(), err))
				return
			}
			row.Action, row.Object = "restored (undone)", got
		}
	}
	// The entry first: no entry may outlive its rule.
	undoObject(sw.se)
	undoObject(sw.dr)
	if sw.claimed {
		if err := t.vips.release(uctx, sw.vip, sw.owner); err != nil {
			errs = append(errs, fmt.Errorf("undo: release VIP %s: %w", sw.vip, err))
		} else {
			sw.se.row.VIP = sw.vip.String() + " (released)"
		}
	}
	return errs
}

// exportService writes one Service's rule and entry. The rule goes first so
// that an entry never exists without it; the entry's write is the commit
// point. When the entry cannot be written, what this call wrote (the rule,
// the VIP claim) is undone. A lost race (Conflict, AlreadyExists) re-reads
// both objects and merges again, so another source cluster's endpoint is
// never replaced. On success the returned writes let the caller undo the
// Service later (an interrupted target).
func (t *exportTarget) exportService(ctx context.Context, svc exportService) (rows []cli.Row, warnings []string, sw *serviceWrites) {
	ns := t.o.TargetNamespace
	seName := builders.ServiceEntryName(svc.Name, t.o.namespace)
	drName := builders.GlobalDestinationRuleName(svc.Name, t.o.namespace)
	se, dr := t.entries[ns+"/"+seName], t.rules[ns+"/"+drName]
	seRow := cli.Row{Cluster: t.context, Kind: rules.KindServiceEntry, Namespace: ns, Name: seName, Gateway: t.src.Gateway.String()}
	drRow := cli.Row{Cluster: t.context, Kind: rules.KindDestinationRule, Namespace: ns, Name: drName, Gateway: t.src.Gateway.String()}
	failBoth := func(err error) ([]cli.Row, []string, *serviceWrites) {
		seRow.Action, seRow.Err = cli.Failed, err
		drRow.Action = cli.Skipped
		return []cli.Row{seRow, drRow}, warnings, nil
	}
	host := rules.FormatHost(svc.Name, t.o.namespace, "")
	if err := t.conflicts(se, dr, host, seName, drName); err != nil {
		return failBoth(err)
	}
	userDR := userGlobalRule(t.rules, ns, host)
	owner := vip.Owner{Namespace: ns, Name: seName, Host: host}
	if se != nil {
		owner.UID = string(se.GetUID())
	}
	addr, claimed, err := t.vips.forEntry(ctx, owner, builders.Addresses(se))
	if err != nil {
		return failBoth(err)
	}
	if addr.IsValid() {
		seRow.VIP = addr.String()
	}
	sw = &serviceWrites{
		svc: svc.Name, vip: addr, owner: owner, claimed: claimed,
		se: written{gvr: rules.ServiceEntryGVR, kind: rules.KindServiceEntry, row: &seRow},
		dr: written{gvr: rules.DestinationRuleGVR, kind: rules.KindDestinationRule, row: &drRow},
	}
	undo := func(cause error) ([]cli.Row, []string, *serviceWrites) {
		if ic := cli.Interrupted(ctx); ic != nil {
			cause = ic
		}
		errs := t.undo(ctx, sw)
		seRow.Action, seRow.Err = cli.Failed, cause
		if len(errs) > 0 {
			seRow.Err = fmt.Errorf("%w (%v)", cause, errs)
		}
		if drRow.Action == "" {
			drRow.Action = cli.Skipped
		}
		return []cli.Row{seRow, drRow}, warnings, nil
	}
	// Rule first, then entry: the entry never routes without its rule.
	for attempt := 1; ; attempt++ {
		sources := builders.MergeSource(builders.SourcesOf(se), t.thisSource(svc))
		wantSE, wantDR, more, err := t.plan(svc, sources, seRow.VIP, dr, userDR, &drRow)
		if err != nil {
			return undo(err)
		}
		warnings = append(warnings, more...)
		last := attempt >= cli.MaxAttempts
		var gotDR *unstructured.Unstructured
		if wantDR != nil { // nil: the user owns the rule
			gotDR, err = t.put(ctx, &sw.dr, dr, wantDR, last)
		}
		if err == nil {
			var gotSE *unstructured.Unstructured
			if gotSE, err = t.put(ctx, &sw.se, se, wantSE, last); err == nil {
				// Another source may have been merged into the entry
				// between our read and our write of the rule: bring the
				// rule up to date.
				if !sameClusters(builders.SourcesOf(gotSE), sources) && !last {
					se, dr = gotSE, gotDR
					continue
				}
				return []cli.Row{seRow, drRow}, warnings, sw
			}
		}
		if !cli.LostRace(err) || last {
			return undo(err)
		}
		if se, dr, err = t.reread(ctx, seName, drName); err != nil {
			return undo(err)
		}
	}
}

// conflicts refuses a Service whose objects in the target someone else
// owns, whose entry has another cluster domain, or whose host another
// visible entry holds.
func (t *exportTarget) conflicts(se, dr *unstructured.Unstructured, host, seName, drName string) error {
	ns := t.o.TargetNamespace
	if se != nil && !builders.IsManaged(se) {
		return fmt.Errorf("%s %s/%s exists and is not managed by kubectl-mesh; it is left alone: delete it or export into another --target-namespace", se.GetKind(), ns, se.GetName())
	}
	if dr != nil && !builders.IsManaged(dr) && builders.HostOf(dr) != host {
		return fmt.Errorf("DestinationRule %s/%s exists for host %s and is not managed by kubectl-mesh; it is left alone: delete it or export into another --target-namespace", ns, drName, builders.HostOf(dr))
	}
	if err := t.sameDomain(se); err != nil {
		return err
	}
	if holder := t.hostHolder(host, ns, seName); holder != "" {
		// The webhook refuses the same: Istio merges entries of one host
		// unpredictably, and each has its own VIP.
		return fmt.Errorf("%s is already held by ServiceEntry %s, which is visible in the same namespaces; a sidecar would use only one of them: delete %s (or give it an exportTo that keeps it apart), then export again", host, holder, holder)
	}
	return nil
}

// plan builds the entry and the rule this attempt writes (the pure
// builders); wantDR is nil when the user owns the `.global` rule.
func (t *exportTarget) plan(svc exportService, sources []builders.Source, vipAddr string, dr, userDR *unstructured.Unstructured, drRow *cli.Row) (wantSE, wantDR *unstructured.Unstructured, warnings []string, err error) {
	exp := t.export(svc, sources, vipAddr)
	if builders.IsManaged(dr) {
		// The locality policy of `kubectl mesh route` stays.
		exp.Locality = builders.LocalityPolicyOf(dr)
	}
	if wantSE, err = builders.ServiceEntry(exp); err != nil {
		return nil, nil, nil, err
	}
	if wantDR, warnings, err = builders.GlobalDestinationRule(exp); err != nil {
		return nil, nil, nil, err
	}
	if userDR != nil {
		drRow.Name, drRow.Action = userDR.GetName(), cli.Skipped+" (not managed by kubectl-mesh)"
		warnings = append(warnings, userGlobalRuleNote(userDR, exp))
		wantDR = nil
	}
	return wantSE, wantDR, warnings, nil
}

// put writes want over cur and records on o what undo needs. A retryable
// error before the last attempt records nothing: the next attempt writes
// again.
func (t *exportTarget) put(ctx context.Context, o *written, cur, want *unstructured.Unstructured, last bool) (*unstructured.Unstructured, error) {
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

// sameDomain refuses to merge this source into an entry whose other
// sources live under another cluster DNS domain: the SNI of the host's one
// DestinationRule names the domain, so it cannot serve both.
func (t *exportTarget) sameDomain(se *unstructured.Unstructured) error {
	if se == nil || len(builders.RemoveSource(builders.SourcesOf(se), t.src.Name)) == 0 {
		return nil
	}
	if have := builders.ClusterDomainOf(se); have != t.o.ClusterDomain {
		return fmt.Errorf("ServiceEntry %s/%s has sources in cluster domain %s, and --source-cluster-domain of %s is %s; the sources of one host must share one domain, which the SNI of its DestinationRule names: export from %s with --source-cluster-domain %s, or unexport the others first",
			se.GetNamespace(), se.GetName(), have, t.src.Name, t.o.ClusterDomain, t.src.Name, have)
	}
	return nil
}

// userGlobalRule finds a DestinationRule kubectl-mesh did not write for the
// `.global` host in namespace ns: Istio applies one rule per host, so
// export leaves it alone instead of adding a second.
func userGlobalRule(all map[string]*unstructured.Unstructured, ns, host string) *unstructured.Unstructured {
	for _, key := range sortedKeys(all) {
		dr := all[key]
		if dr.GetNamespace() == ns && !builders.IsManaged(dr) && builders.HostOf(dr) == host {
			return dr
		}
	}
	return nil
}

func userGlobalRuleNote(dr *unstructured.Unstructured, e builders.Export) string {
	return fmt.Sprintf("DestinationRule %s/%s for %s is not managed by kubectl-mesh and was left alone; for requests to land it must set tls.mode ISTIO_MUTUAL with the remote SNI (spec.trafficPolicy.portLevelSettings, and each subset's trafficPolicy.portLevelSettings): %s",
		dr.GetNamespace(), dr.GetName(), builders.HostOf(dr), strings.Join(builders.RequiredSNIs(e), "; "))
}

func (t *exportTarget) reread(ctx context.Context, seName, drName string) (se, dr *unstructured.Unstructured, err error) {
	ns := t.o.TargetNamespace
	if se, err = t.w.Get(ctx, rules.ServiceEntryGVR, ns, seName); err != nil {
		return nil, nil, err
	}
	if dr, err = t.w.Get(ctx, rules.DestinationRuleGVR, ns, drName); err != nil {
		return nil, nil, err
	}
	return se, dr, nil
}

// mergeAction keeps "created" over a later "configured" of the same run.
func mergeAction(prev, next cli.Action) cli.Action {
	if prev == cli.Created || prev == cli.Configured && next == cli.Unchanged {
		return prev
	}
	return next
}

func sameClusters(a, b []builders.Source) bool {
	names := func(s []builders.Source) []string {
		out := make([]string, 0, len(s))
		for _, x := range s {
			out = append(out, x.Cluster)
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(names(a), names(b))
}

// planClientDryRun builds the objects for a target without contacting it:
// no VIP (it is allocated in the target) and no merge with other sources.
func (o *ExportOptions) planClientDryRun(target string, src *source) targetResult {
	res := targetResult{cluster: target, succeeded: map[string]bool{}}
	t := &exportTarget{o: o, src: src, context: target}
	for _, svc := range src.Services {
		if svc.Err != nil {
			continue
		}
		exp := t.export(svc, []builders.Source{t.thisSource(svc)}, "")
		seName := builders.ServiceEntryName(svc.Name, o.namespace)
		drName := builders.GlobalDestinationRuleName(svc.Name, o.namespace)
		se, err := builders.ServiceEntry(exp)
		if err != nil {
			res.rows = append(res.rows, cli.Row{Cluster: target, Kind: rules.KindServiceEntry, Namespace: o.TargetNamespace, Name: seName, Action: cli.Failed, Err: err})
			continue
		}
		dr, warnings, _ := builders.GlobalDestinationRule(exp)
		res.warnings = append(res.warnings, warnings...)
		res.rows = append(res.rows,
			cli.Row{Cluster: target, Kind: rules.KindServiceEntry, Namespace: o.TargetNamespace, Name: seName, Action: cli.Planned, VIP: "(allocated in " + target + ")", Gateway: src.Gateway.String(), Object: se},
			cli.Row{Cluster: target, Kind: rules.KindDestinationRule, Namespace: o.TargetNamespace, Name: drName, Action: cli.Planned, Gateway: src.Gateway.String(), Object: dr},
		)
		res.succeeded[svc.Name] = true
	}
	return res
}

// hostHolder is another ServiceEntry of host that a sidecar would see
// together with the entry export writes (namespace ns, no exportTo, so
// visible everywhere), as "namespace/name"; "" when there is none.
func (t *exportTarget) hostHolder(host, ns, seName string) string {
	for _, key := range t.byHost[host] {
		if key == ns+"/"+seName {
			continue
		}
		other := t.entries[key]
		exportTo, _, _ := unstructured.NestedStringSlice(other.Object, "spec", "exportTo")
		if rules.VisibleTogether(ns, nil, other.GetNamespace(), exportTo) {
			return key
		}
	}
	return ""
}
