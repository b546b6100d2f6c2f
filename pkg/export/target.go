package export

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// targetResult is the outcome of one target cluster.
type targetResult struct {
	rows      []cli.Row
	warnings  []string
	succeeded map[string]bool // service → its entry and rule are in place
}

// target is one target cluster during a run.
type target struct {
	req     Request
	src     *source
	cluster string
	kube    kubernetes.Interface
	w       cli.Writer
	entries map[string]*unstructured.Unstructured // by namespace/name
	byHost  map[string][]string                   // host → namespace/name of entries
	rules   map[string]*unstructured.Unstructured
	vips    *vipAllocator
}

func exportTo(ctx context.Context, f cli.Factory, req Request, cluster string, src *source) targetResult {
	res := targetResult{succeeded: map[string]bool{}}
	fail := func(err error) targetResult {
		if cause := cli.Interrupted(ctx); cause != nil {
			err = fmt.Errorf("%w before any object was written here", cause)
		}
		res.rows = append(res.rows, cli.Row{Cluster: cluster, Action: cli.Failed, Err: err})
		return res
	}
	c, err := f.Cluster(cluster)
	if err != nil {
		return fail(fmt.Errorf("--to: %w", err))
	}
	if req.DryRun == cli.DryRunClient {
		return planClientDryRun(req, cluster, src)
	}
	t := &target{req: req, src: src, cluster: cluster, kube: c.Kube, w: cli.Writer{Dynamic: c.Dynamic, DryRun: req.DryRun}}
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
func (t *target) load(ctx context.Context) error {
	dyn := t.w.Dynamic
	var err error
	// One List per kind for every Service of the run. Entries of all
	// namespaces: without VIPClaims they are what VIP uniqueness is
	// checked against.
	if t.entries, err = listByName(ctx, dyn, rules.ServiceEntryGVR, ""); err != nil {
		return fmt.Errorf("list ServiceEntries: %w; are Istio's CRDs installed?", err)
	}
	t.byHost = map[string][]string{}
	for _, key := range sortedKeys(t.entries) {
		for _, h := range rules.ReadServiceEntry(t.entries[key].Object).Hosts {
			t.byHost[h] = append(t.byHost[h], key)
		}
	}
	if t.rules, err = listByName(ctx, dyn, rules.DestinationRuleGVR, t.req.TargetNamespace); err != nil {
		return fmt.Errorf("list DestinationRules in namespace %s: %w", t.req.TargetNamespace, err)
	}
	t.vips, err = newVIPAllocator(ctx, dyn, t.entries, t.w.DryRun == cli.DryRunServer)
	return err
}

// run exports the source's Services on a few workers. Interrupted before
// every Service was in place, the target goes back to what it was, not to
// a mix of written and missing Services.
func (t *target) run(ctx context.Context, res *targetResult) {
	var (
		mu         sync.Mutex
		done       []*serviceWrites
		notStarted int
		svcs       = t.src.exportable()
	)
	cli.ForEach(serviceWorkers, len(svcs), func(i int) {
		if ctx.Err() != nil {
			mu.Lock()
			notStarted++
			mu.Unlock()
			return
		}
		rows, warnings, sw := t.exportService(ctx, svcs[i])
		mu.Lock()
		defer mu.Unlock()
		if sw != nil {
			done = append(done, sw)
		} else {
			res.rows = append(res.rows, rows...)
		}
		res.warnings = append(res.warnings, warnings...)
		res.succeeded[svcs[i].Name] = sw != nil
	})
	if cause := cli.Interrupted(ctx); cause != nil && (notStarted > 0 || len(done) < len(res.succeeded)) {
		for _, sw := range done {
			if errs := t.undo(ctx, sw); len(errs) > 0 {
				sw.se.row.Err = fmt.Errorf("%w (%v)", cause, errs)
			}
			res.succeeded[sw.svc] = false
		}
		res.rows = append(res.rows, cli.Row{Cluster: t.cluster, Action: cli.Failed, Err: fmt.Errorf("%w: what this run wrote here is undone", cause)})
	}
	for _, sw := range done {
		res.rows = append(res.rows, *sw.se.row, *sw.dr.row)
	}
}

func (t *target) ensureNamespace(ctx context.Context) (*cli.Row, error) {
	ns := t.req.TargetNamespace
	_, err := t.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	switch {
	case err == nil:
		return nil, nil
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("namespace %s: %w", ns, err)
	case !t.req.CreateNamespace:
		return nil, fmt.Errorf("namespace %s not found; create it, pass --create-namespace, or choose another with --target-namespace", ns)
	}
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{rules.ManagedByLabel: rules.ManagedByValue}}}
	if _, err := t.kube.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{FieldManager: rules.FieldManager, DryRun: t.w.DryRun.Options()}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create namespace %s: %w", ns, err)
	}
	return &cli.Row{Cluster: t.cluster, Kind: "Namespace", Name: ns, Action: cli.Created}, nil
}

// entryOf is the builders' description of svc's entry and rule here.
func entryOf(req Request, svc service, sources []builders.Source, vipAddr string) builders.Export {
	return builders.Export{
		Name: svc.Name, Namespace: req.Namespace, TargetNamespace: req.TargetNamespace,
		Ports: svc.Ports, Sources: sources, VIP: vipAddr, ClusterDomain: req.ClusterDomain,
	}
}

// planClientDryRun builds the objects for a target without contacting it:
// no VIP (it is allocated in the target) and no merge with other sources.
func planClientDryRun(req Request, cluster string, src *source) targetResult {
	res := targetResult{succeeded: map[string]bool{}}
	ns, gw := req.TargetNamespace, src.Gateway.String()
	for _, svc := range src.exportable() {
		exp := entryOf(req, svc, []builders.Source{src.builderSource(svc)}, "")
		seName := builders.ServiceEntryName(svc.Name, req.Namespace)
		drName := builders.GlobalDestinationRuleName(svc.Name, req.Namespace)
		se, err := builders.ServiceEntry(exp)
		if err != nil {
			res.rows = append(res.rows, cli.Row{Cluster: cluster, Kind: rules.KindServiceEntry, Namespace: ns, Name: seName, Action: cli.Failed, Err: err})
			continue
		}
		dr, warnings, _ := builders.GlobalDestinationRule(exp)
		res.warnings = append(res.warnings, warnings...)
		res.rows = append(res.rows,
			cli.Row{Cluster: cluster, Kind: rules.KindServiceEntry, Namespace: ns, Name: seName, Action: cli.Planned, VIP: "(allocated in " + cluster + ")", Gateway: gw, Object: se},
			cli.Row{Cluster: cluster, Kind: rules.KindDestinationRule, Namespace: ns, Name: drName, Action: cli.Planned, Gateway: gw, Object: dr},
		)
		res.succeeded[svc.Name] = true
	}
	return res
}
