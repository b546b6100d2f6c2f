package link

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// newToken asks the TokenRequest API of to for a token of the reader
// with TokenExpiry, bound to a fresh token binding Secret: replacing the
// binding revokes the token it replaces, and unlink's deleting it revokes
// this one. created is the binding made, which a later failure removes;
// a failure here removes it at once. A dry run asks for no token.
func (r *run) newToken(ctx context.Context, mp *mesh.MultiPrimaryRecord) (_ string, created *unstructured.Unstructured, err error) {
	binding := mesh.TokenBinding(r.from.Context, mp.Reader)
	r.Log.Object(binding)
	if !r.DryRun.Persists() {
		if _, err := r.toW.Apply(ctx, gvrSecret, binding); err != nil {
			return "", nil, err
		}
		r.Log.Line(r.to.Context, Changed, "reader token", fmt.Sprintf("TokenRequest for ServiceAccount istio-system/%s, bound to Secret istio-system/%s (not asked in a dry run)", mp.Reader, binding.Name))
		return "REDACTED", nil, nil
	}
	revoked, err := r.toW.DeleteManaged(ctx, gvrSecret, rules.IstioSystemNamespace, binding.Name)
	if err != nil {
		return "", nil, err
	}
	desired, err := runtime.DefaultUnstructuredConverter.ToUnstructured(binding)
	if err != nil {
		return "", nil, err
	}
	made, _, err := r.toW.Put(ctx, gvrSecret, nil, &unstructured.Unstructured{Object: desired})
	if err != nil {
		return "", nil, fmt.Errorf("create token binding Secret istio-system/%s: %w", binding.Name, err)
	}
	defer func() {
		if err != nil {
			err = r.dropBinding(ctx, made, err)
		}
	}()
	secs := int64(r.TokenExpiry.Seconds())
	tr, err := r.to.Kube.CoreV1().ServiceAccounts(rules.IstioSystemNamespace).CreateToken(ctx, mp.Reader, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &secs,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: made.GetName(), UID: made.GetUID()},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", nil, fmt.Errorf("TokenRequest for ServiceAccount istio-system/%s: %w", mp.Reader, err)
	}
	exp := tr.Status.ExpirationTimestamp.UTC()
	mp.TokenExpires = &exp
	if err := r.checkReaderToken(ctx, mp, tr.Status.Token); err != nil {
		return "", nil, err
	}
	claims, _ := mesh.ReadTokenClaims(tr.Status.Token)
	detail := fmt.Sprintf("TokenRequest for ServiceAccount istio-system/%s, bound to Secret istio-system/%s, expires %s; run link again from %s to renew it", mp.Reader, binding.Name, exp.Format(time.RFC3339), claims.RenewFrom(r.TokenRenewBefore).Format(time.RFC3339))
	if revoked {
		detail += " (the token it replaces is revoked)"
	}
	r.Log.Line(r.to.Context, Changed, "reader token", detail)
	return tr.Status.Token, made, nil
}

// dropBinding deletes a token binding Secret this run created when what
// followed failed (or was interrupted): no remote secret holds its token,
// which the deletion revokes. It runs even when ctx is cancelled; err is
// the failure, returned with what was undone.
func (r *run) dropBinding(ctx context.Context, binding *unstructured.Unstructured, err error) error {
	uctx, cancel := cli.UndoContext(ctx)
	defer cancel()
	binding = binding.DeepCopy()
	binding.SetResourceVersion("") // the one this run made, whichever version
	if derr := r.toW.Delete(uctx, gvrSecret, binding); derr != nil {
		return fmt.Errorf("%w (and the token binding Secret istio-system/%s it made stays: %v; delete it by hand)", err, binding.GetName(), derr)
	}
	r.Log.Line(r.to.Context, Changed, "reader token", fmt.Sprintf("token binding Secret istio-system/%s removed again (undone): no remote secret holds its token", binding.GetName()))
	return err
}

// tokenCheckTimeout bounds each request of the token check when the
// kubeconfig sets no request timeout.
const tokenCheckTimeout = 10 * time.Second

// checkReaderToken asks to, as the new token, what istiod needs: to list
// Services and EndpointSlices everywhere; and records whether it may read
// Secrets. RBAC caches of the API server may take a moment to see a new
// binding, so the lists are asked again for a few seconds.
func (r *run) checkReaderToken(ctx context.Context, mp *mesh.MultiPrimaryRecord, token string) error {
	f := r.Factory
	if r.to.Config.Timeout == 0 {
		f = f.WithTimeout(tokenCheckTimeout)
	}
	as, err := f.AsToken(r.to, token)
	if err != nil {
		return fmt.Errorf("ask %s what the new token may do: %w", r.to.Context, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		acc, err := ReaderAccess(ctx, as.Kube)
		if err != nil {
			return fmt.Errorf("ask %s what the new token may do: %w", r.to.Context, err)
		}
		if acc.Services && acc.EndpointSlices {
			mp.SecretRead = acc.Secrets
			if acc.Secrets != (mp.Reader == mesh.IstioReaderServiceAccount || mp.Reader == mesh.ReaderName) {
				r.Log.Warnf(r.to.Context, "ServiceAccount istio-system/%s %s Secrets, unlike its ClusterRole; another binding grants or denies it", mp.Reader, map[bool]string{true: "may read", false: "may not read"}[acc.Secrets])
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the token of ServiceAccount istio-system/%s cannot list Services (%v) and EndpointSlices (%v) in all namespaces, which istiod needs; bind it to Istio's reader ClusterRole (%s), or run link with --no-secret-read for kubectl-mesh's own reader", mp.Reader, acc.Services, acc.EndpointSlices, mesh.IstioReaderRoleName)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
