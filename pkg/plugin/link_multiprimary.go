package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// tokenWait is how long link waits for a token controller to fill the
// reader's token Secret before it asks the TokenRequest API instead.
const tokenWait = 3 * time.Second

// multiPrimary gives --from's istiod a reader kubeconfig for --to.
func (r *linkRun) multiPrimary(ctx context.Context) error {
	if !r.o.MultiPrimary {
		return nil
	}
	caller := r.from.Context
	name := mesh.ReaderName(caller)
	prev := r.record.MultiPrimary
	mp := &mesh.MultiPrimaryRecord{Reader: name, RemoteSecret: mesh.RemoteSecretName(r.to.Context)}
	if prev != nil {
		mp.Network, mp.TokenSecret, mp.TokenExpires = prev.Network, prev.TokenSecret, prev.TokenExpires
	}
	r.record.MultiPrimary = mp
	if err := r.savePending(ctx); err != nil {
		return err
	}
	for _, w := range []struct {
		what string
		do   func() (bool, error)
	}{
		{"ServiceAccount istio-system/" + name, func() (bool, error) {
			sa := mesh.ReaderServiceAccount(caller)
			r.log.object(sa)
			return r.toA.apply(ctx, gvrServiceAccount, sa)
		}},
		{"ClusterRole " + name + " (read only)", func() (bool, error) {
			cr := mesh.ReaderClusterRole(caller)
			r.log.object(cr)
			return r.toA.apply(ctx, gvrClusterRole, cr)
		}},
		{"ClusterRoleBinding " + name, func() (bool, error) {
			crb := mesh.ReaderClusterRoleBinding(caller)
			r.log.object(crb)
			return r.toA.apply(ctx, gvrClusterRoleBinding, crb)
		}},
	} {
		changed, err := w.do()
		if err != nil {
			return fmt.Errorf("%s: %w", r.to.Context, err)
		}
		r.log.line(r.to.Context, result(changed), "reader", w.what)
	}
	ca, err := caData(r.to.Config)
	if err != nil {
		return fmt.Errorf("%s: %w", r.to.Context, err)
	}
	kubeconfig := r.reusableKubeconfig(ctx, prev, mp)
	if kubeconfig == nil {
		token, how, err := r.readerToken(ctx, name, mp)
		if err != nil {
			return fmt.Errorf("%s: reader token: %w", r.to.Context, err)
		}
		r.log.line(r.to.Context, stepChanged, "reader token", how)
		if kubeconfig, err = mesh.RemoteKubeconfig(r.to.Context, r.to.Config.Host, ca, token); err != nil {
			return err
		}
	}
	secret := mesh.RemoteSecret(r.to.Context, kubeconfig)
	shown := secret.DeepCopy()
	if redacted, err := mesh.RemoteKubeconfig(r.to.Context, r.to.Config.Host, ca, "REDACTED"); err == nil {
		shown.Data[r.to.Context] = redacted
	}
	r.log.object(shown)
	changed, err := r.fromA.apply(ctx, gvrSecret, secret)
	if err != nil {
		return fmt.Errorf("%s: %w", r.from.Context, err)
	}
	r.log.line(r.from.Context, result(changed), "remote secret", fmt.Sprintf("Secret istio-system/%s: kubeconfig of %s for istiod", secret.Name, r.to.Context))
	if r.o.Network != "" {
		if err := r.network(ctx, mp); err != nil {
			return err
		}
	}
	return nil
}

// reusableKubeconfig returns the kubeconfig of the existing remote secret
// when its token (of the previous link, prev) is still good for a while,
// so that running link again changes nothing.
func (r *linkRun) reusableKubeconfig(ctx context.Context, prev, mp *mesh.MultiPrimaryRecord) []byte {
	if prev == nil || (prev.TokenSecret == "" && (prev.TokenExpires == nil || time.Until(*prev.TokenExpires) < reuseMargin)) {
		return nil
	}
	s, err := r.from.Kube.CoreV1().Secrets(rules.IstioSystemNamespace).Get(ctx, mp.RemoteSecret, metav1.GetOptions{})
	if err != nil || len(s.Data[r.to.Context]) == 0 {
		return nil
	}
	cfg, err := clientcmd.Load(s.Data[r.to.Context])
	if err != nil || cfg.Clusters[r.to.Context] == nil || cfg.Clusters[r.to.Context].Server != r.to.Config.Host {
		return nil
	}
	mp.TokenSecret, mp.TokenExpires = prev.TokenSecret, prev.TokenExpires
	r.log.line(r.to.Context, stepOK, "reader token", "the remote secret's token is still valid")
	return s.Data[r.to.Context]
}

// reuseMargin: a token expiring sooner than this is replaced.
const reuseMargin = 30 * 24 * time.Hour

func result(changed bool) string {
	if changed {
		return stepChanged
	}
	return stepOK
}

// readerToken returns a token for the reader account. A token Secret is
// what istioctl uses, but only a token controller (kube-controller-manager)
// fills it; without one, the TokenRequest API gives a token of bounded
// lifetime and the unfilled Secret is removed again. The Secret is
// recorded before it is created, and removed again when link fails or is
// interrupted before it holds a token that the remote secret uses.
func (r *linkRun) readerToken(ctx context.Context, name string, mp *mesh.MultiPrimaryRecord) (token, how string, err error) {
	if !r.toA.writes() || r.o.DryRun == "server" {
		return "REDACTED", "skipped in a dry run", nil
	}
	secrets := r.to.Kube.CoreV1().Secrets(rules.IstioSystemNamespace)
	ts := mesh.ReaderTokenSecret(r.from.Context)
	mp.TokenSecret = ts.Name
	if err := r.savePending(ctx); err != nil {
		return "", "", err
	}
	filled := false
	defer func() {
		if filled {
			return
		}
		// An interrupt cancels ctx; the removal must still get through.
		cctx, cancel := undoContext(ctx)
		defer cancel()
		if _, rerr := r.toA.remove(cctx, gvrSecret, rules.IstioSystemNamespace, ts.Name); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the temporary token Secret istio-system/%s: %w; delete it by hand", ts.Name, rerr))
			return
		}
		mp.TokenSecret = ""
		if err != nil {
			r.log.line(r.to.Context, stepChanged, "reader token", fmt.Sprintf("temporary token Secret istio-system/%s removed again (undone)", ts.Name))
		}
	}()
	if _, err := r.toA.apply(ctx, gvrSecret, ts); err != nil {
		return "", "", err
	}
	deadline := time.Now().Add(tokenWait)
	for {
		s, err := secrets.Get(ctx, ts.Name, metav1.GetOptions{})
		if err != nil {
			return "", "", err
		}
		if t := s.Data[corev1.ServiceAccountTokenKey]; len(t) > 0 {
			filled = true
			mp.TokenExpires = nil
			return string(t), "from token Secret istio-system/" + ts.Name, nil
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	secs := int64(r.o.TokenExpiry.Seconds())
	tr, err := r.to.Kube.CoreV1().ServiceAccounts(rules.IstioSystemNamespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
	if err != nil {
		return "", "", err
	}
	exp := tr.Status.ExpirationTimestamp.UTC()
	mp.TokenExpires = &exp
	return tr.Status.Token, fmt.Sprintf("TokenRequest (no token controller filled Secret %s within %s), expires %s; run link again before then", ts.Name, tokenWait, exp.Format(time.RFC3339)), nil
}

func caData(cfg *rest.Config) ([]byte, error) {
	if len(cfg.CAData) > 0 {
		return cfg.CAData, nil
	}
	if cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read the API server CA %s: %w", cfg.CAFile, err)
		}
		return b, nil
	}
	return nil, nil
}

// network labels --to's istio-system with its network.
func (r *linkRun) network(ctx context.Context, mp *mesh.MultiPrimaryRecord) error {
	ns, err := r.to.Kube.CoreV1().Namespaces().Get(ctx, rules.IstioSystemNamespace, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("%s: read namespace istio-system: %w", r.to.Context, err)
	}
	old, existed := ns.Labels[mesh.NetworkLabel]
	if existed && old == r.o.Network {
		r.log.line(r.to.Context, stepOK, "network", fmt.Sprintf("istio-system is labelled %s=%s", mesh.NetworkLabel, old))
		return nil
	}
	if mp.Network == nil {
		mp.Network = &mesh.LabelChange{Key: mesh.NetworkLabel, Existed: existed, Before: old}
	}
	mp.Network.Value = r.o.Network
	if err := r.savePending(ctx); err != nil {
		return err
	}
	patched := ns.DeepCopy()
	if patched.Labels == nil {
		patched.Labels = map[string]string{}
	}
	patched.Labels[mesh.NetworkLabel] = r.o.Network
	patched.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}
	r.log.object(patched)
	if r.toA.writes() {
		if _, err := r.to.Kube.CoreV1().Namespaces().Update(ctx, patched, metav1.UpdateOptions{FieldManager: rules.FieldManager, DryRun: r.toA.dryRunOpt()}); err != nil {
			return fmt.Errorf("%s: label namespace istio-system: %w", r.to.Context, err)
		}
	}
	r.log.line(r.to.Context, stepChanged, "network", fmt.Sprintf("istio-system labelled %s=%s (was %q)", mesh.NetworkLabel, r.o.Network, old))
	return nil
}
