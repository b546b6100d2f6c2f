package certs

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// lastAppliedAnnotation is where kubectl apply keeps the whole object it
// applied, keys included; carried over, it would keep the old CA key in the
// new Secret.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// backUp saves every cacerts Secret install is about to replace, readable
// by its owner only (it holds the old CA key), before any is written.
func (in *installer) backUp(plans []*installPlan) error {
	if !in.DryRun.Persists() {
		return nil
	}
	dir := in.BackupDir
	if dir == "" {
		dir = filepath.Join(in.Dir, "backups")
	}
	stamp := now(in.Now).UTC().Format("20060102T150405Z")
	for _, p := range plans {
		if p.action != actionUpdate {
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
		if _, err := fmt.Fprintf(in.msg, "%s: secret %s/%s to be replaced saved to %s (mode 0600: it holds the old CA key; restore it with kubectl replace -f)\n", p.target.Name, rules.IstioSystemNamespace, pki.SecretName, path); err != nil {
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

// write writes one cluster's Secret, then reports on istiod and restarts
// it when asked; wrote says the Secret was created or replaced (a later
// error is then about the restart).
func (in *installer) write(ctx context.Context, p *installPlan) (_ *corev1.Secret, wrote bool, _ error) {
	name, suffix := p.target.Name, in.DryRun.Suffix()
	if !in.DryRun.Writes() {
		_, err := fmt.Fprintf(in.msg, "%s: secret %s/%s would be created or updated%s\n", name, rules.IstioSystemNamespace, pki.SecretName, suffix)
		return p.secret, false, err
	}
	if !p.nsExists {
		if err := in.createNamespace(ctx, p); err != nil {
			return nil, false, err
		}
		if !in.DryRun.Persists() {
			// The namespace was not persisted, so the server cannot check
			// a Secret inside it; show what would be sent.
			_, err := fmt.Fprintf(in.msg, "%s: secret %s/%s would be created%s\n", name, rules.IstioSystemNamespace, pki.SecretName, suffix)
			return p.secret, false, err
		}
	}
	result, err := in.writeSecret(ctx, p)
	if err != nil {
		return nil, false, fmt.Errorf("%s (context %s): %s secret %s/%s: %w", name, p.target.Context, p.action, rules.IstioSystemNamespace, pki.SecretName, err)
	}
	wrote = p.action != actionUnchanged && in.DryRun.Persists()
	id, _ := in.Bundles[name].Identity()
	verb := map[string]string{actionCreate: "created", actionUpdate: "replaced", actionUnchanged: "unchanged"}[p.action]
	if p.addsTrust {
		verb = "updated: the same intermediate, trusting more roots"
	}
	if _, err := fmt.Fprintf(in.msg, "%s: secret %s/%s %s%s\n  root %s\n  intermediate %s\n", name, rules.IstioSystemNamespace, pki.SecretName, verb, suffix, strings.Join(id.Roots, " + "), id.Intermediate); err != nil {
		return nil, wrote, err
	}
	if err := in.afterInstall(ctx, p); err != nil {
		return nil, wrote, err
	}
	result = result.DeepCopy()
	result.TypeMeta = p.secret.TypeMeta
	return result, wrote, nil
}

func (in *installer) createNamespace(ctx context.Context, p *installPlan) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rules.IstioSystemNamespace}}
	create := metav1.CreateOptions{FieldManager: rules.FieldManager, DryRun: in.DryRun.Options()}
	if _, err := p.kube.CoreV1().Namespaces().Create(ctx, ns, create); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("%s: create namespace %s: %w", p.target.Name, rules.IstioSystemNamespace, err)
	}
	_, err := fmt.Fprintf(in.msg, "%s: namespace %s created%s\n", p.target.Name, rules.IstioSystemNamespace, in.DryRun.Suffix())
	return err
}

// writeSecret creates the Secret, or replaces it (the version read as
// precondition) keeping the cluster's own labels and annotations but for
// kubectl apply's copy of the old one; it returns the Secret the cluster
// holds now.
func (in *installer) writeSecret(ctx context.Context, p *installPlan) (*corev1.Secret, error) {
	secrets := p.kube.CoreV1().Secrets(rules.IstioSystemNamespace)
	switch p.action {
	case actionCreate:
		return secrets.Create(ctx, p.secret, metav1.CreateOptions{FieldManager: rules.FieldManager, DryRun: in.DryRun.Options()})
	case actionUpdate:
		s := p.secret.DeepCopy()
		s.ResourceVersion = p.existing.ResourceVersion
		s.Labels = mergeLabels(p.existing.Labels, s.Labels)
		s.Annotations = maps.Clone(p.existing.Annotations)
		delete(s.Annotations, lastAppliedAnnotation)
		return secrets.Update(ctx, s, metav1.UpdateOptions{FieldManager: rules.FieldManager, DryRun: in.DryRun.Options()})
	}
	return p.existing, nil
}

func mergeLabels(old, add map[string]string) map[string]string {
	out := map[string]string{}
	maps.Copy(out, old)
	maps.Copy(out, add)
	return out
}
