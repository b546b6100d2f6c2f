package plugin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/builders"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

const unexportLong = `Undo kubectl mesh export for one source cluster.

In every target cluster, unexport removes the --from cluster's endpoint from
the Service's .global ServiceEntry and its subsets from the DestinationRule.
When no endpoint is left it deletes both objects and frees the entry's VIP
claim. In the source cluster it deletes the version DestinationRule once no
target is left. Objects not labelled app.kubernetes.io/managed-by=kubectl-mesh
are never touched.`

const unexportExample = `  # Stop exporting httpbin of cluster2 to cluster1
  kubectl mesh unexport httpbin -n bar --from cluster2 --to cluster1

  # Remove cluster3's endpoint of helloworld; cluster2's stays
  kubectl mesh unexport helloworld -n hello --from cluster3 --to cluster1

  # Everything exported from namespace shop of east
  kubectl mesh unexport --all -n shop --from east --to west,north`

// UnexportOptions are the options of `kubectl mesh unexport`.
type UnexportOptions struct {
	Services        []string
	All             bool
	From            string
	To              []string
	FromClusterName string
	TargetNamespace string
	DryRun          string
	PrintFlags      *cli.PrintFlags
	WrapConfig      func(rest.Config) rest.Config

	factory   cli.Factory
	namespace string
	genericiooptions.IOStreams
}

// NewUnexportOptions returns options with kubectl's defaults.
func NewUnexportOptions(f cli.Factory, streams genericiooptions.IOStreams) *UnexportOptions {
	return &UnexportOptions{DryRun: DryRunNone, PrintFlags: cli.NewPrintFlags("unexported"), factory: f, IOStreams: streams}
}

// NewCmdUnexport returns `kubectl mesh unexport`.
func NewCmdUnexport(f cli.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewUnexportOptions(f, streams)
	cmd := &cobra.Command{
		Use:     "unexport (SERVICE... | --all) -n NAMESPACE --from CONTEXT --to CONTEXT[,CONTEXT...]",
		Short:   "Remove a source cluster's endpoint of exported Services, and the objects export wrote",
		Long:    unexportLong,
		Example: unexportExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&o.All, "all", false, "Unexport every Service of the namespace exported from --from.")
	fl.StringVar(&o.From, "from", "", "Kubeconfig context of the source cluster (default: the current context).")
	fl.StringSliceVar(&o.To, "to", nil, "Kubeconfig contexts of the target clusters, comma-separated.")
	fl.StringVar(&o.FromClusterName, "from-cluster-name", "", "Name of the source cluster in endpoint labels (default: the --from context name).")
	fl.StringVar(&o.TargetNamespace, "target-namespace", "", "Namespace of the ServiceEntries in the targets (default: the Service's namespace).")
	fl.StringVar(&o.DryRun, "dry-run", o.DryRun, `Must be "none" or "server" (ask every cluster, change nothing).`)
	o.PrintFlags.AddFlags(cmd)
	return cmd
}

// Complete reads the namespace and defaults.
func (o *UnexportOptions) Complete(args []string) error {
	o.Services = args
	ns, err := completeSource(o.factory, &o.From, &o.FromClusterName, &o.TargetNamespace)
	if err != nil {
		return err
	}
	o.namespace = ns
	return o.factory.CheckContexts(append([]string{o.From}, o.To...)...)
}

// Validate checks the flags.
func (o *UnexportOptions) Validate() error {
	if len(o.Services) > 0 && o.All || len(o.Services) == 0 && !o.All {
		return errors.New("name the Services to unexport (SERVICE...) or pass --all")
	}
	if err := validateServiceArgs(o.Services, "", o.All); err != nil {
		return err
	}
	if err := validateTargets(o.From, o.To); err != nil {
		return err
	}
	if o.DryRun == DryRunClient {
		return errors.New("--dry-run=client is not supported by unexport: what it removes depends on the targets; use --dry-run=server")
	}
	if err := validateDryRun(o.DryRun); err != nil {
		return err
	}
	if err := o.PrintFlags.Validate(); err != nil {
		return err
	}
	return validateClusterName(o.FromClusterName)
}

// Run unexports and prints the outcome.
func (o *UnexportOptions) Run(ctx context.Context) error {
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		rows    []cli.Row
		removed = map[string][]string{} // service → targets it is gone from
	)
	for _, target := range o.To {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, gone := o.unexportFrom(ctx, target)
			mu.Lock()
			defer mu.Unlock()
			rows = append(rows, r...)
			for _, svc := range gone {
				removed[svc] = append(removed[svc], target+"/"+o.TargetNamespace)
			}
		}()
	}
	wg.Wait()
	cli.SortRows(rows)
	rows = append(rows, o.cleanSource(ctx, removed)...)
	if err := cli.PrintRows(o.Out, o.PrintFlags, rows, dryRunSuffix(o.DryRun)); err != nil {
		return err
	}
	// An interrupted unexport stops where it was: what it removed stays
	// removed, and running it again finishes.
	return cli.WithInterrupt(ctx, "unexport", failures(rows, "unexport"))
}

func (o *UnexportOptions) clients(context string) (dynamic.Interface, error) {
	_, cfg, err := restConfigFor(o.factory, context, o.WrapConfig)
	if err != nil {
		return nil, err
	}
	return dynamic.NewForConfig(cfg)
}

// unexportFrom handles one target; gone lists the Services that no longer
// have an endpoint of the source there.
func (o *UnexportOptions) unexportFrom(ctx context.Context, target string) (rows []cli.Row, gone []string) {
	fail := func(err error) ([]cli.Row, []string) {
		return []cli.Row{{Cluster: target, Action: cli.Failed, Err: err}}, nil
	}
	dyn, err := o.clients(target)
	if err != nil {
		return fail(fmt.Errorf("--to: %w", err))
	}
	ns := o.TargetNamespace
	w := cli.Writer{Dynamic: dyn, DryRun: parsedDryRun(o.DryRun)}
	entries, err := listByName(ctx, dyn, rules.ServiceEntryGVR, ns)
	if err != nil {
		return fail(fmt.Errorf("list ServiceEntries in namespace %s: %w", ns, err))
	}
	drs, err := listByName(ctx, dyn, rules.DestinationRuleGVR, ns)
	if err != nil {
		return fail(fmt.Errorf("list DestinationRules in namespace %s: %w", ns, err))
	}
	var claims *vip.Claims
	if _, err := dyn.Resource(vip.GVR).List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
		claims = vip.NewClaims(dyn, rules.DefaultVIPSpace())
	} else if !apierrors.IsNotFound(err) {
		return fail(fmt.Errorf("list VIPClaims: %w", err))
	}
	services := o.Services
	if o.All {
		services = exportedFrom(entries, o.namespace)
	}
	for _, svc := range services {
		r, ok := o.unexportService(ctx, w, claims, target, svc, entries, drs)
		rows = append(rows, r...)
		if ok {
			gone = append(gone, svc)
		}
	}
	return rows, gone
}

// exportedFrom lists the Services whose managed entries say they come from
// namespace ns.
func exportedFrom(entries map[string]*unstructured.Unstructured, ns string) []string {
	var out []string
	for _, key := range sortedKeys(entries) {
		se := entries[key]
		if !builders.IsManaged(se) {
			continue
		}
		if from := annotation(se, builders.AnnotationExportedFrom); strings.HasPrefix(from, ns+"/") {
			out = append(out, strings.TrimPrefix(from, ns+"/"))
		}
	}
	return out
}

func (o *UnexportOptions) unexportService(ctx context.Context, w cli.Writer, claims *vip.Claims, target, svc string, entries, drs map[string]*unstructured.Unstructured) ([]cli.Row, bool) {
	ns := o.TargetNamespace
	seName := builders.ServiceEntryName(svc, o.namespace)
	drName := builders.GlobalDestinationRuleName(svc, o.namespace)
	se, dr := entries[ns+"/"+seName], drs[ns+"/"+drName]
	seRow := cli.Row{Cluster: target, Kind: rules.KindServiceEntry, Namespace: ns, Name: seName}
	drRow := cli.Row{Cluster: target, Kind: rules.KindDestinationRule, Namespace: ns, Name: drName}
	if se == nil {
		seRow.Action, drRow.Action = cli.NotFound, cli.NotFound
		if dr != nil {
			drRow.Action = cli.Skipped
		}
		return []cli.Row{seRow, drRow}, true
	}
	seRow.VIP = strings.Join(builders.Addresses(se), ",")
	if !builders.IsManaged(se) {
		seRow.Action, drRow.Action = cli.Skipped+" (not managed by kubectl-mesh)", cli.Skipped
		return []cli.Row{seRow, drRow}, false
	}
	for attempt := 1; ; attempt++ {
		sources := builders.SourcesOf(se)
		rest := builders.RemoveSource(sources, o.FromClusterName)
		var err error
		switch {
		case len(rest) == len(sources):
			seRow.Action, drRow.Action = cli.Unchanged+cli.Action(" (no endpoint of "+o.FromClusterName+")"), cli.Unchanged
			return []cli.Row{seRow, drRow}, true
		case len(rest) == 0:
			err = o.deletePair(ctx, w, claims, se, dr, &seRow, &drRow)
		default:
			err = o.shrinkPair(ctx, w, svc, se, dr, rest, &seRow, &drRow)
		}
		if err == nil {
			return []cli.Row{seRow, drRow}, true
		}
		if cli.LostRace(err) && attempt < cli.MaxAttempts {
			if se, err = w.Get(ctx, rules.ServiceEntryGVR, ns, seName); err == nil && se != nil {
				if dr, err = w.Get(ctx, rules.DestinationRuleGVR, ns, drName); err == nil {
					continue
				}
			}
			if err == nil { // the entry is gone meanwhile
				seRow.Action, drRow.Action = cli.NotFound, cli.NotFound
				return []cli.Row{seRow, drRow}, true
			}
		}
		seRow.Action, seRow.Err = cli.Failed, err
		return []cli.Row{seRow, drRow}, false
	}
}

// deletePair deletes the entry first, so that no entry is left without its
// rule, then the rule, then frees the entry's VIP claims.
func (o *UnexportOptions) deletePair(ctx context.Context, w cli.Writer, claims *vip.Claims, se, dr *unstructured.Unstructured, seRow, drRow *cli.Row) error {
	if err := w.Delete(ctx, rules.ServiceEntryGVR, se); err != nil {
		return err
	}
	seRow.Action = cli.Deleted
	switch {
	case dr == nil:
		drRow.Action = cli.NotFound
	case !builders.IsManaged(dr):
		drRow.Action = cli.Skipped + " (not managed by kubectl-mesh)"
	default:
		if err := w.Delete(ctx, rules.DestinationRuleGVR, dr); err != nil && !apierrors.IsConflict(err) {
			drRow.Action, drRow.Err = cli.Failed, err
		} else {
			drRow.Action = cli.Deleted
		}
	}
	if claims != nil && !(w.DryRun == cli.DryRunServer) {
		owner := vip.Owner{Namespace: se.GetNamespace(), Name: se.GetName(), UID: string(se.GetUID())}
		for _, a := range builders.Addresses(se) {
			if addr, err := netip.ParseAddr(a); err == nil {
				if err := claims.Release(ctx, addr, owner); err != nil {
					seRow.Err = fmt.Errorf("entry deleted, but its VIP claim %s remains: %w; delete it with kubectl delete vipclaim %s", a, err, a)
				}
			}
		}
	}
	return nil
}

// shrinkPair rewrites entry and rule without the source's endpoint and
// subsets, keeping the VIP, the ports and the egress variant.
func (o *UnexportOptions) shrinkPair(ctx context.Context, w cli.Writer, svc string, se, dr *unstructured.Unstructured, rest []builders.Source, seRow, drRow *cli.Row) error {
	exp := builders.Export{
		Name: svc, Namespace: o.namespace, TargetNamespace: o.TargetNamespace,
		Ports:         builders.PortsOf(se),
		Sources:       rest,
		ClusterDomain: builders.ClusterDomainOf(se),
		EgressAddress: builders.EgressAddressOf(se),
	}
	if a := builders.Addresses(se); len(a) > 0 {
		exp.VIP = a[0]
	}
	wantSE, err := builders.ServiceEntry(exp)
	if err != nil {
		return err
	}
	wantDR, _, err := builders.GlobalDestinationRule(exp)
	if err != nil {
		return err
	}
	// The entry shrinks first: a rule with a subset for a cluster the entry
	// no longer has routes nowhere, the reverse would drop live traffic.
	_, action, err := w.Put(ctx, rules.ServiceEntryGVR, se, wantSE)
	if err != nil {
		return err
	}
	seRow.Action = action
	if dr != nil && !builders.IsManaged(dr) {
		drRow.Action = cli.Skipped + " (not managed by kubectl-mesh)"
		return nil
	}
	_, action, err = w.Put(ctx, rules.DestinationRuleGVR, dr, wantDR)
	if err != nil {
		drRow.Action, drRow.Err = cli.Failed, err
		return nil
	}
	drRow.Action = action
	return nil
}

// cleanSource removes the targets from the source's version rule and
// deletes it with the last one.
func (o *UnexportOptions) cleanSource(ctx context.Context, removed map[string][]string) []cli.Row {
	if len(removed) == 0 {
		return nil
	}
	dyn, err := o.clients(o.From)
	if err != nil {
		return []cli.Row{{Cluster: o.From, Action: cli.Failed, Err: fmt.Errorf("--from: %w", err)}}
	}
	w := cli.Writer{Dynamic: dyn, DryRun: parsedDryRun(o.DryRun)}
	var rows []cli.Row
	for _, svc := range sortedKeys(removed) {
		name := builders.LocalDestinationRuleName(svc, o.namespace)
		row := cli.Row{Cluster: o.From, Kind: rules.KindDestinationRule, Namespace: o.namespace, Name: name}
		for attempt := 1; ; attempt++ {
			dr, err := w.Get(ctx, rules.DestinationRuleGVR, o.namespace, name)
			if err != nil {
				row.Action, row.Err = cli.Failed, err
				break
			}
			if dr == nil {
				row.Action = cli.NotFound
				break
			}
			if !builders.IsManaged(dr) {
				row.Action = cli.Skipped + " (not managed by kubectl-mesh)"
				break
			}
			left := slices.DeleteFunc(builders.SplitList(annotation(dr, builders.AnnotationExportedTo)), func(t string) bool { return slices.Contains(removed[svc], t) })
			if len(left) == 0 {
				err = w.Delete(ctx, rules.DestinationRuleGVR, dr)
				row.Action = cli.Deleted
			} else {
				want := dr.DeepCopy()
				ann := want.GetAnnotations()
				ann[builders.AnnotationExportedTo] = strings.Join(left, ",")
				want.SetAnnotations(ann)
				_, row.Action, err = w.Put(ctx, rules.DestinationRuleGVR, dr, applyable(want))
			}
			if err != nil && cli.LostRace(err) && attempt < cli.MaxAttempts {
				continue
			}
			if err != nil {
				row.Action, row.Err = cli.Failed, err
			}
			break
		}
		rows = append(rows, row)
	}
	return rows
}

// applyable strips the server-owned fields of an object read from the API
// so that it can be applied back.
func applyable(u *unstructured.Unstructured) *unstructured.Unstructured {
	out := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": u.GetAPIVersion(),
		"kind":       u.GetKind(),
		"metadata":   map[string]any{},
		"spec":       u.Object["spec"],
	}}
	out.SetName(u.GetName())
	out.SetNamespace(u.GetNamespace())
	out.SetLabels(u.GetLabels())
	out.SetAnnotations(u.GetAnnotations())
	return out
}

// completeSource defaults the flags export and unexport share: --from is the
// current context, --from-cluster-name the --from context, and
// --target-namespace the namespace (-n). It returns that namespace.
func completeSource(f cli.Factory, from, fromClusterName, targetNamespace *string) (string, error) {
	ns, _, err := f.Getter.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", err
	}
	if *from == "" {
		if *from, err = f.CurrentContext(); err != nil {
			return "", fmt.Errorf("--from: %w", err)
		}
	}
	if *fromClusterName == "" {
		*fromClusterName = *from
	}
	if *targetNamespace == "" {
		*targetNamespace = ns
	}
	return ns, nil
}
