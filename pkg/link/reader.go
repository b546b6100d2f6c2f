package link

import (
	"context"
	"fmt"
	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// readerChoice is the account of to whose token the remote secret holds.
type readerChoice struct {
	name       string
	owned      bool // kubectl-mesh's shared reader, else Istio's
	secretRead bool
}

// reader picks the reader account of to: Istio's
// istio-reader-service-account when it exists, as istioctl does, unless
// NoSecretRead asks for one that may not read Secrets; otherwise
// kubectl-mesh's own, with the rules of the installed Istio's reader
// ClusterRole (less Secrets with NoSecretRead), written here after mp,
// naming it, is on record.
func (r *run) reader(ctx context.Context, mp *mesh.MultiPrimaryRecord) (readerChoice, error) {
	if !r.NoSecretRead {
		_, err := r.to.Kube.CoreV1().ServiceAccounts(rules.IstioSystemNamespace).Get(ctx, mesh.IstioReaderServiceAccount, metav1.GetOptions{})
		if err == nil {
			r.Log.Line(r.to.Context, OK, "reader", fmt.Sprintf("ServiceAccount istio-system/%s (Istio's, with its reader ClusterRole; it reads Secrets, istio-system/cacerts too: --no-secret-read uses a reader that does not)", mesh.IstioReaderServiceAccount))
			return readerChoice{name: mesh.IstioReaderServiceAccount, secretRead: true}, nil
		}
		if !apierrors.IsNotFound(err) {
			return readerChoice{}, fmt.Errorf("%s: read ServiceAccount istio-system/%s: %w", r.to.Context, mesh.IstioReaderServiceAccount, err)
		}
	}
	rs, from, err := istioReaderRules(ctx, r.to.Kube)
	if err != nil {
		return readerChoice{}, fmt.Errorf("%s: %w", r.to.Context, err)
	}
	name, what := mesh.ReaderName, "Istio's reader rules"
	if r.NoSecretRead {
		if rs, err = mesh.WithoutSecrets(rs); err != nil {
			return readerChoice{}, fmt.Errorf("%s: %s: %w; bind a reader of your own", r.to.Context, from, err)
		}
		name, what = mesh.ReaderNoSecretsName, "Istio's reader rules less Secrets"
	}
	mp.Reader, mp.ReaderOwned, mp.SecretRead = name, true, !r.NoSecretRead
	r.record.MultiPrimary = mp
	if err := r.savePending(ctx); err != nil {
		return readerChoice{}, err
	}
	for _, w := range []struct {
		what string
		gvr  schema.GroupVersionResource
		obj  runtime.Object
	}{
		{"ServiceAccount istio-system/" + name, gvrServiceAccount, mesh.ReaderServiceAccount(name)},
		{fmt.Sprintf("ClusterRole %s (%s, from %s)", name, what, from), gvrClusterRole, mesh.ReaderClusterRole(name, rs, from)},
		{"ClusterRoleBinding " + name, gvrClusterRoleBinding, mesh.ReaderClusterRoleBinding(name)},
	} {
		r.Log.Object(w.obj)
		changed, err := r.toW.Apply(ctx, w.gvr, w.obj)
		if err != nil {
			return readerChoice{}, fmt.Errorf("%s: %w", r.to.Context, err)
		}
		r.Log.Line(r.to.Context, changedIf(changed), "reader", w.what)
	}
	return readerChoice{name: name, owned: true, secretRead: !r.NoSecretRead}, nil
}

// istioReaderRules are the rules of the installed Istio's reader
// ClusterRole (istio-reader-clusterrole-istio-system, else any labelled
// app=istio-reader), else those Istio's chart renders.
func istioReaderRules(ctx context.Context, kube kubernetes.Interface) ([]rbacv1.PolicyRule, string, error) {
	crs := kube.RbacV1().ClusterRoles()
	cr, err := crs.Get(ctx, mesh.IstioReaderRoleName, metav1.GetOptions{})
	if err == nil {
		return cr.Rules, "ClusterRole " + cr.Name, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, "", fmt.Errorf("read Istio's ClusterRole %s: %w", mesh.IstioReaderRoleName, err)
	}
	list, err := crs.List(ctx, metav1.ListOptions{LabelSelector: mesh.IstioReaderRoleLabel + "=" + mesh.IstioReaderRoleLabelValue})
	if err != nil {
		return nil, "", fmt.Errorf("list Istio's reader ClusterRoles (label %s=%s): %w", mesh.IstioReaderRoleLabel, mesh.IstioReaderRoleLabelValue, err)
	}
	items := slices.DeleteFunc(list.Items, func(c rbacv1.ClusterRole) bool { return rules.IsManaged(c.Labels) })
	if len(items) == 0 {
		return mesh.IstioReaderRules(), mesh.IstioChartRules, nil
	}
	slices.SortFunc(items, func(a, b rbacv1.ClusterRole) int { return strings.Compare(a.Name, b.Name) })
	return items[0].Rules, "ClusterRole " + items[0].Name, nil
}

// Access is what a reader token may do, as the API server answers it.
type Access struct {
	Services, EndpointSlices, Secrets bool
}

// ReaderAccess asks the API server, as the identity of kube's credentials,
// whether it may list Services and EndpointSlices in all namespaces and
// get Secrets in istio-system (cacerts among them).
func ReaderAccess(ctx context.Context, kube kubernetes.Interface) (Access, error) {
	can := func(ra authorizationv1.ResourceAttributes) (bool, error) {
		rev, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &ra},
		}, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		return rev.Status.Allowed, nil
	}
	var a Access
	var err error
	if a.Services, err = can(authorizationv1.ResourceAttributes{Verb: "list", Resource: "services"}); err != nil {
		return a, err
	}
	if a.EndpointSlices, err = can(authorizationv1.ResourceAttributes{Verb: "list", Group: "discovery.k8s.io", Resource: "endpointslices"}); err != nil {
		return a, err
	}
	a.Secrets, err = can(authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: rules.IstioSystemNamespace, Name: "cacerts"})
	return a, err
}
