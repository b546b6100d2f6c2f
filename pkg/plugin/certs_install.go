package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

const certsInstallExample = `  # Install <dir>/cluster1 into the current context
  kubectl mesh certs install --cluster cluster1

  # Install into two contexts named after their clusters, restarting istiod
  kubectl mesh certs install --contexts cluster1,cluster2 --restart

  # Contexts whose names differ from the cluster directories
  kubectl mesh certs install --contexts east=gke_east,west=gke_west

  # Show the Secret without creating it
  kubectl mesh certs install --context cluster1 --dry-run=client -o yaml`

// restartedAtAnnotation is what `kubectl rollout restart` sets on a pod
// template to roll a Deployment.
const restartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// CertsInstallOptions are the options of `kubectl mesh certs install`.
type CertsInstallOptions struct {
	Dir             string
	Cluster         string
	Contexts        []string
	ClusterNames    []string
	Force           bool
	BackupDir       string
	Restart         bool
	RestartGateways bool
	// DryRun is --dry-run, parsed by Complete.
	DryRun     cli.DryRun
	PrintFlags *cli.PrintFlags

	dryRunFlag string
	targets    []clusterTarget
	bundles    map[string]*pki.Bundle
	factory    cli.Factory
	now        func() time.Time
	genericiooptions.IOStreams
}

// NewCmdCertsInstall returns `kubectl mesh certs install`.
func NewCmdCertsInstall(f cli.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	o := &CertsInstallOptions{IOStreams: streams, factory: f, now: time.Now, PrintFlags: cli.NewPrintFlags("installed")}
	cmd := &cobra.Command{
		Use:     "install",
		Short:   "Create or update Istio's cacerts Secret in one or more clusters",
		Example: certsInstallExample,
		Args:    cobra.NoArgs,
		RunE:    cli.RunE(o),
	}
	cmd.Flags().StringVar(&o.Dir, "dir", defaultCertsDir, "Directory holding <cluster>/ with the files from \"certs intermediate\".")
	cmd.Flags().StringVar(&o.Cluster, "cluster", "", "Cluster whose files to install into --context (default: the context's name).")
	cmd.Flags().StringSliceVar(&o.Contexts, "contexts", nil, "Install into these contexts: CTX or NAME=CTX, comma-separated.")
	cmd.Flags().StringSliceVar(&o.ClusterNames, "cluster-names", nil, "Cluster names for --contexts, in the same order.")
	cmd.Flags().BoolVar(&o.Force, "force", false, "Replace an existing cacerts Secret that holds a different root or intermediate (not needed when the new files only add roots to the installed intermediate and roots).")
	cmd.Flags().StringVar(&o.BackupDir, "backup-dir", "", "Where a replaced cacerts Secret is saved first, one 0600 file per cluster (default <dir>/backups).")
	cmd.Flags().BoolVar(&o.Restart, "restart", false, "Restart istiod afterwards so that it loads the new CA.")
	cmd.Flags().BoolVar(&o.RestartGateways, "restart-gateways", false, "With --restart, also restart the ingress and egress gateways.")
	cli.AddDryRunFlag(cmd, &o.dryRunFlag)
	o.PrintFlags.AddFlags(cmd)
	cmd.Flags().Lookup("output").Usage += " Prints the Secrets: the only output that contains the private key."
	return cmd
}

// Complete parses --dry-run, resolves the clusters and reads their files.
func (o *CertsInstallOptions) Complete(_ *cobra.Command, _ []string) error {
	d, err := cli.ParseDryRun(o.dryRunFlag)
	if err != nil {
		return err
	}
	o.DryRun = d
	if len(o.Contexts) > 0 {
		if o.Cluster != "" {
			return fmt.Errorf("--cluster names the cluster of --context; with --contexts use NAME=CTX or --cluster-names")
		}
		t, err := parseClusterTargets(o.Contexts, o.ClusterNames)
		if err != nil {
			return err
		}
		o.targets = t
	} else {
		if len(o.ClusterNames) > 0 {
			return fmt.Errorf("--cluster-names goes with --contexts; for one context use --cluster")
		}
		ctx, err := o.factory.CurrentContext()
		if err != nil {
			return err
		}
		name := o.Cluster
		if name == "" {
			name = ctx
		}
		o.targets = []clusterTarget{{Name: name, Context: ctx}}
	}
	if err := o.factory.CheckContexts(targetContexts(o.targets)...); err != nil {
		return err
	}
	o.bundles = map[string]*pki.Bundle{}
	for _, t := range o.targets {
		dir := filepath.Join(o.Dir, t.Name)
		b, err := pki.LoadBundle(dir)
		if err != nil {
			return err
		}
		// Never install what istiod could not use.
		if r := pki.VerifyBundle(dir, b, o.now(), 0); !r.OK() {
			return fmt.Errorf("%s does not verify, not installing it: %s", dir, strings.Join(r.Errors, "; "))
		}
		o.bundles[t.Name] = b
	}
	return nil
}

// Validate checks the flags.
func (o *CertsInstallOptions) Validate() error {
	if err := o.PrintFlags.Validate(); err != nil {
		return err
	}
	if o.RestartGateways && !o.Restart {
		return fmt.Errorf("--restart-gateways restarts the gateways after istiod; pass --restart too")
	}
	for _, t := range o.targets {
		if err := validateCertsClusterName(t.Name); err != nil {
			return fmt.Errorf("--cluster: %w", err)
		}
	}
	return nil
}

// installPlan is what install will do in one cluster, decided before
// anything is written anywhere.
type installPlan struct {
	target   clusterTarget
	kube     kubernetes.Interface
	secret   *corev1.Secret
	existing *corev1.Secret
	nsExists bool
	action   string // create, update, unchanged
	backup   string // file holding the replaced Secret
	// addsTrust: the update keeps the installed intermediate and roots and
	// adds roots, which needs no --force.
	addsTrust bool
}

// Run installs the Secret in every cluster. All clusters are read and
// checked first, so a refusal in one leaves every cluster untouched; every
// Secret to be replaced is saved to a file before any is written. When a
// write fails, the error lists the clusters written and those not.
func (o *CertsInstallOptions) Run(ctx context.Context) error {
	msg := o.Out
	if !o.PrintFlags.Table() {
		// stdout carries only the objects so that it can be piped.
		msg = o.ErrOut
	}
	plans := make([]*installPlan, 0, len(o.targets))
	for _, t := range o.targets {
		p, err := o.plan(ctx, t)
		if err != nil {
			return cli.WithInterrupt(ctx, "certs install", fmt.Errorf("%w\nno cluster was written", err))
		}
		plans = append(plans, p)
	}
	if err := o.backUp(plans, msg); err != nil {
		return fmt.Errorf("%w\nno cluster was written", err)
	}
	var printed []runtime.Object
	var written []string
	for i, p := range plans {
		out, wrote, err := o.apply(ctx, p, msg)
		if wrote {
			written = append(written, p.target.Name)
		}
		if err != nil {
			return cli.WithInterrupt(ctx, "certs install", partialInstall(err, plans[i:], wrote, written))
		}
		printed = append(printed, out)
	}
	// Without -o the messages above are the whole output.
	return o.PrintFlags.PrintObjects(o.Out, printed, func(io.Writer) error { return nil })
}

// partialInstall says which clusters got their cacerts written before err
// stopped install, and which did not.
func partialInstall(err error, rest []*installPlan, restartOnly bool, written []string) error {
	var notWritten []string
	for i, p := range rest {
		if i == 0 && restartOnly {
			continue // its Secret was written, its restart failed
		}
		if p.action != "unchanged" {
			notWritten = append(notWritten, p.target.Name)
		}
	}
	list := func(names []string) string {
		if len(names) == 0 {
			return "none"
		}
		return strings.Join(names, ", ")
	}
	return fmt.Errorf("%w\ncacerts written: %s; not written: %s; fix the cause and run install again (clusters that already hold the files stay unchanged)", err, list(written), list(notWritten))
}

// backUp saves every cacerts Secret install is about to replace, readable
// by its owner only (it holds the old CA key), before any is written.
func (o *CertsInstallOptions) backUp(plans []*installPlan, msg io.Writer) error {
	if !o.DryRun.Persists() {
		return nil
	}
	dir := o.BackupDir
	if dir == "" {
		dir = filepath.Join(o.Dir, "backups")
	}
	stamp := o.now().UTC().Format("20060102T150405Z")
	for _, p := range plans {
		if p.action != "update" {
			continue
		}
		b, err := yaml.Marshal(backupOf(p.existing))
		if err != nil {
			return err
		}
		path, err := pki.WriteBackup(dir, p.target.Name+"-cacerts-"+stamp+".yaml", b)
		if err != nil {
			return fmt.Errorf("%s: back up the cacerts Secret it replaces: %w; pass --backup-dir", p.target.Name, err)
		}
		p.backup = path
		if _, err := fmt.Fprintf(msg, "%s: secret %s/%s to be replaced saved to %s (mode 0600: it holds the old CA key; restore it with kubectl replace -f)\n", p.target.Name, rules.IstioSystemNamespace, pki.SecretName, path); err != nil {
			return err
		}
	}
	return nil
}

// backupOf is a Secret as it can be applied again: without the fields the
// API server sets.
func backupOf(s *corev1.Secret) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, Labels: s.Labels, Annotations: s.Annotations},
		Type:       s.Type,
		Data:       s.Data,
	}
}

// lastAppliedAnnotation is where kubectl apply keeps the whole object it
// applied, keys included; carried over, it would keep the old CA key in the
// new Secret.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

func (o *CertsInstallOptions) plan(ctx context.Context, t clusterTarget) (*installPlan, error) {
	p := &installPlan{target: t, secret: pki.NewSecret(o.bundles[t.Name]), action: "create", nsExists: true}
	if !o.DryRun.Writes() {
		return p, nil
	}
	c, err := o.factory.Cluster(t.Context)
	if err != nil {
		return nil, err
	}
	kube := c.Kube
	p.kube = kube
	if _, err := kube.CoreV1().Namespaces().Get(ctx, rules.IstioSystemNamespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		p.nsExists = false
		return p, nil
	} else if err != nil {
		return nil, fmt.Errorf("%s: read namespace %s: %w", t.Name, rules.IstioSystemNamespace, err)
	}
	existing, err := kube.CoreV1().Secrets(rules.IstioSystemNamespace).Get(ctx, pki.SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: read secret %s/%s: %w", t.Name, rules.IstioSystemNamespace, pki.SecretName, err)
	}
	p.existing = existing
	p.action = "update"
	newB := o.bundles[t.Name]
	newID, err := newB.Identity()
	if err != nil {
		return nil, err
	}
	oldB, err := pki.BundleFromSecret(existing)
	if err == nil && oldB.Equal(newB) {
		p.action = "unchanged"
		return p, nil
	}
	var oldID pki.Identity
	if err == nil {
		oldID, err = oldB.Identity()
	}
	switch {
	case err != nil && !o.Force:
		return nil, fmt.Errorf("%s (context %s): the existing secret %s/%s is unreadable (%v); pass --force to replace it with %s", t.Name, t.Context, rules.IstioSystemNamespace, pki.SecretName, err, newID)
	case err == nil && newID.OnlyAddsTrust(oldID):
		p.addsTrust = true
	case err == nil && !oldID.Same(newID) && !o.Force:
		return nil, fmt.Errorf("%s (context %s): secret %s/%s holds a different CA: installed %s; new %s; pass --force to replace it (then restart istiod and the workloads: --restart)", t.Name, t.Context, rules.IstioSystemNamespace, pki.SecretName, oldID, newID)
	}
	return p, nil
}

// apply writes one cluster's Secret; wrote says the Secret was created or
// replaced (a later error is then about the restart).
func (o *CertsInstallOptions) apply(ctx context.Context, p *installPlan, msg io.Writer) (_ *corev1.Secret, wrote bool, _ error) {
	name := p.target.Name
	suffix := o.DryRun.Suffix()
	if !o.DryRun.Writes() {
		_, err := fmt.Fprintf(msg, "%s: secret %s/%s would be created or updated%s\n", name, rules.IstioSystemNamespace, pki.SecretName, suffix)
		return p.secret, false, err
	}
	create := metav1.CreateOptions{FieldManager: rules.FieldManager, DryRun: o.DryRun.Options()}
	update := metav1.UpdateOptions{FieldManager: rules.FieldManager, DryRun: o.DryRun.Options()}
	patch := metav1.PatchOptions{FieldManager: rules.FieldManager, DryRun: o.DryRun.Options()}
	secrets := p.kube.CoreV1().Secrets(rules.IstioSystemNamespace)
	result := p.existing
	if !p.nsExists {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rules.IstioSystemNamespace}}
		if _, err := p.kube.CoreV1().Namespaces().Create(ctx, ns, create); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, false, fmt.Errorf("%s: create namespace %s: %w", name, rules.IstioSystemNamespace, err)
		}
		if _, err := fmt.Fprintf(msg, "%s: namespace %s created%s\n", name, rules.IstioSystemNamespace, suffix); err != nil {
			return nil, false, err
		}
		if !o.DryRun.Persists() {
			// The namespace was not persisted, so the server cannot check
			// a Secret inside it; show what would be sent.
			_, err := fmt.Fprintf(msg, "%s: secret %s/%s would be created%s\n", name, rules.IstioSystemNamespace, pki.SecretName, suffix)
			return p.secret, false, err
		}
	}
	var err error
	switch p.action {
	case "create":
		result, err = secrets.Create(ctx, p.secret, create)
	case "update":
		s := p.secret.DeepCopy()
		s.ResourceVersion = p.existing.ResourceVersion
		s.Labels = mergeLabels(p.existing.Labels, s.Labels)
		s.Annotations = maps.Clone(p.existing.Annotations)
		delete(s.Annotations, lastAppliedAnnotation)
		result, err = secrets.Update(ctx, s, update)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s (context %s): %s secret %s/%s: %w", name, p.target.Context, p.action, rules.IstioSystemNamespace, pki.SecretName, err)
	}
	wrote = p.action != "unchanged" && o.DryRun.Persists()
	id, _ := o.bundles[name].Identity()
	verb := map[string]string{"create": "created", "update": "replaced", "unchanged": "unchanged"}[p.action]
	if p.addsTrust {
		verb = "updated: the same intermediate, trusting more roots"
	}
	if _, err := fmt.Fprintf(msg, "%s: secret %s/%s %s%s\n  root %s\n  intermediate %s\n", name, rules.IstioSystemNamespace, pki.SecretName, verb, suffix, strings.Join(id.Roots, " + "), id.Intermediate); err != nil {
		return nil, wrote, err
	}
	if err := o.afterInstall(ctx, p, patch, msg, suffix); err != nil {
		return nil, wrote, err
	}
	result = result.DeepCopy()
	result.TypeMeta = p.secret.TypeMeta
	return result, wrote, nil
}

// afterInstall reports istiod's state and restarts it (and the gateways)
// when asked: istiod reads cacerts only at start-up.
func (o *CertsInstallOptions) afterInstall(ctx context.Context, p *installPlan, patch metav1.PatchOptions, msg io.Writer, suffix string) error {
	name := p.target.Name
	deployments := p.kube.AppsV1().Deployments(rules.IstioSystemNamespace)
	istiod, err := deployments.Get(ctx, "istiod", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err := fmt.Fprintf(msg, "%s: istiod is not installed; it will load cacerts when Istio is installed\n", name)
		return err
	}
	if err != nil {
		return fmt.Errorf("%s: read deployment %s/istiod: %w", name, rules.IstioSystemNamespace, err)
	}
	if _, err := fmt.Fprintf(msg, "%s: istiod %s\n", name, deploymentState(istiod)); err != nil {
		return err
	}
	if !o.Restart {
		if p.action == "unchanged" {
			return nil
		}
		_, err := fmt.Fprintf(msg, "%s: istiod loads cacerts only at start-up; restart it: kubectl --context %s -n %s rollout restart deployment/istiod (or rerun with --restart)\n", name, p.target.Context, rules.IstioSystemNamespace)
		return err
	}
	toRestart := []appsv1.Deployment{*istiod}
	if o.RestartGateways {
		list, err := deployments.List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("%s: list deployments in %s: %w", name, rules.IstioSystemNamespace, err)
		}
		for _, d := range list.Items {
			if isGateway(&d) {
				toRestart = append(toRestart, d)
			}
		}
	}
	body, err := restartPatch(o.now())
	if err != nil {
		return err
	}
	for _, d := range toRestart {
		if _, err := deployments.Patch(ctx, d.Name, types.StrategicMergePatchType, body, patch); err != nil {
			return fmt.Errorf("%s: restart deployment %s/%s: %w", name, rules.IstioSystemNamespace, d.Name, err)
		}
		if _, err := fmt.Fprintf(msg, "%s: deployment %s/%s restarted%s\n", name, rules.IstioSystemNamespace, d.Name, suffix); err != nil {
			return err
		}
	}
	return nil
}

// restartPatch is the patch `kubectl rollout restart` sends.
func restartPatch(now time.Time) ([]byte, error) {
	return json.Marshal(map[string]any{
		"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
			"annotations": map[string]string{restartedAtAnnotation: now.Format(time.RFC3339)},
		}}},
	})
}

// isGateway recognises Istio's gateway Deployments by the labels Istio's
// charts give them.
func isGateway(d *appsv1.Deployment) bool {
	switch d.Labels["istio"] {
	case "ingressgateway", "egressgateway":
		return true
	}
	switch d.Labels["app"] {
	case "istio-ingressgateway", "istio-egressgateway":
		return true
	}
	return false
}

// deploymentState says honestly whether a Deployment's pods run.
func deploymentState(d *appsv1.Deployment) string {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	if d.Status.ReadyReplicas == 0 {
		return fmt.Sprintf("is installed but not running (0/%d replicas ready)", want)
	}
	return fmt.Sprintf("is running (%d/%d replicas ready)", d.Status.ReadyReplicas, want)
}

func mergeLabels(old, add map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range old {
		out[k] = v
	}
	for k, v := range add {
		out[k] = v
	}
	return out
}
