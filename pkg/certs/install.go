package certs

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// InstallRequest is one `certs install`, its flags parsed and its files
// read (LoadBundles).
type InstallRequest struct {
	// Dir holds the cluster directories; replaced Secrets are saved to
	// BackupDir, by default Dir/backups.
	Dir       string
	BackupDir string
	Targets   []Target
	// Bundles are the files to install, by target name.
	Bundles map[string]*pki.Bundle
	// Force replaces a cacerts that holds another CA (not needed when the
	// new files only add roots to the installed intermediate and roots).
	Force bool
	// Restart restarts istiod after its cacerts is written, and with
	// RestartGateways the ingress and egress gateways too.
	Restart         bool
	RestartGateways bool
	DryRun          cli.DryRun
	// Now is the clock (nil: time.Now): it stamps backups and restarts.
	Now func() time.Time
	// Messages receives a line for each thing done, as it is done (nil:
	// dropped).
	Messages io.Writer
}

// LoadBundles reads the files of every target from dir/<name>, refusing
// any that does not verify: istiod could not use it.
func LoadBundles(dir string, targets []Target, at time.Time) (map[string]*pki.Bundle, error) {
	bundles := map[string]*pki.Bundle{}
	for _, t := range targets {
		cdir := filepath.Join(dir, t.Name)
		b, err := pki.LoadBundle(cdir)
		if err != nil {
			return nil, err
		}
		if r := pki.VerifyBundle(cdir, b, at, 0); !r.OK() {
			return nil, fmt.Errorf("%s does not verify, not installing it: %s", cdir, strings.Join(r.Errors, "; "))
		}
		bundles[t.Name] = b
	}
	return bundles, nil
}

// What install does to one cluster's cacerts.
const (
	actionCreate    = "create"
	actionUpdate    = "update"
	actionUnchanged = "unchanged"
)

// installPlan is what install will do in one cluster, decided before
// anything is written anywhere.
type installPlan struct {
	target   Target
	kube     kubernetes.Interface
	secret   *corev1.Secret
	existing *corev1.Secret
	nsExists bool
	action   string
	backup   string // file holding the replaced Secret
	// addsTrust: the update keeps the installed intermediate and roots and
	// adds roots, which needs no --force.
	addsTrust bool
}

// installer runs one InstallRequest.
type installer struct {
	InstallRequest
	factory cli.Factory
	msg     io.Writer
}

// Install installs the cacerts Secret in every cluster and returns the
// Secrets as the clusters now hold them (or would). All clusters are read
// and checked first, so a refusal in one leaves every cluster untouched;
// every Secret to be replaced is saved to a file before any is written.
// When a write fails, the error lists the clusters written and those not.
func Install(ctx context.Context, f cli.Factory, req InstallRequest) ([]*corev1.Secret, error) {
	in := &installer{InstallRequest: req, factory: f, msg: req.Messages}
	if in.msg == nil {
		in.msg = io.Discard
	}
	plans := make([]*installPlan, 0, len(req.Targets))
	for _, t := range req.Targets {
		p, err := in.plan(ctx, t)
		if err != nil {
			return nil, cli.WithInterrupt(ctx, "certs install", fmt.Errorf("%w\nno cluster was written", err))
		}
		plans = append(plans, p)
	}
	if err := in.backUp(plans); err != nil {
		return nil, fmt.Errorf("%w\nno cluster was written", err)
	}
	secrets := make([]*corev1.Secret, 0, len(plans))
	var written []string
	for i, p := range plans {
		s, wrote, err := in.write(ctx, p)
		if wrote {
			written = append(written, p.target.Name)
		}
		if err != nil {
			return nil, cli.WithInterrupt(ctx, "certs install", partialInstall(err, plans[i:], wrote, written))
		}
		secrets = append(secrets, s)
	}
	return secrets, nil
}

// partialInstall says which clusters got their cacerts written before err
// stopped install, and which did not.
func partialInstall(err error, rest []*installPlan, restartOnly bool, written []string) error {
	var notWritten []string
	for i, p := range rest {
		if i == 0 && restartOnly {
			continue // its Secret was written, its restart failed
		}
		if p.action != actionUnchanged {
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

// plan reads the cluster's namespace and cacerts and decides what to do,
// refusing to replace another CA without Force. A client dry run reads
// nothing.
func (in *installer) plan(ctx context.Context, t Target) (*installPlan, error) {
	p := &installPlan{target: t, secret: pki.NewSecret(in.Bundles[t.Name]), action: actionCreate, nsExists: true}
	if !in.DryRun.Writes() {
		return p, nil
	}
	c, err := in.factory.Cluster(t.Context)
	if err != nil {
		return nil, err
	}
	p.kube = c.Kube
	if _, err := p.kube.CoreV1().Namespaces().Get(ctx, rules.IstioSystemNamespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		p.nsExists = false
		return p, nil
	} else if err != nil {
		return nil, fmt.Errorf("%s: read namespace %s: %w", t.Name, rules.IstioSystemNamespace, err)
	}
	existing, err := p.kube.CoreV1().Secrets(rules.IstioSystemNamespace).Get(ctx, pki.SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: read secret %s/%s: %w", t.Name, rules.IstioSystemNamespace, pki.SecretName, err)
	}
	p.existing = existing
	p.action = actionUpdate
	if err := in.checkReplace(p); err != nil {
		return nil, err
	}
	return p, nil
}

// checkReplace decides an update: unchanged when the cluster holds the
// files already, no --force needed when they only add trust, refused
// without Force when the installed CA is another or unreadable.
func (in *installer) checkReplace(p *installPlan) error {
	t := p.target
	newB := in.Bundles[t.Name]
	newID, err := newB.Identity()
	if err != nil {
		return err
	}
	oldB, err := pki.BundleFromSecret(p.existing)
	if err == nil && oldB.Equal(newB) {
		p.action = actionUnchanged
		return nil
	}
	var oldID pki.Identity
	if err == nil {
		oldID, err = oldB.Identity()
	}
	switch {
	case err != nil && !in.Force:
		return fmt.Errorf("%s (context %s): the existing secret %s/%s is unreadable (%v); pass --force to replace it with %s", t.Name, t.Context, rules.IstioSystemNamespace, pki.SecretName, err, newID)
	case err == nil && newID.OnlyAddsTrust(oldID):
		p.addsTrust = true
	case err == nil && !oldID.Same(newID) && !in.Force:
		return fmt.Errorf("%s (context %s): secret %s/%s holds a different CA: installed %s; new %s; pass --force to replace it (then restart istiod and the workloads: --restart)", t.Name, t.Context, rules.IstioSystemNamespace, pki.SecretName, oldID, newID)
	}
	return nil
}
