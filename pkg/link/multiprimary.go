package link

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// multiPrimary gives from's istiod a remote secret for to, shaped like
// istioctl create-remote-secret's, holding a token of a reader account of
// to, and labels the clusters' networks.
func (r *run) multiPrimary(ctx context.Context) error {
	if !r.MultiPrimary {
		return nil
	}
	prev := r.record.MultiPrimary
	name, err := r.peerClusterName(ctx)
	if err != nil {
		return err
	}
	server := r.Servers[r.to.Context]
	if server == "" {
		server = r.to.Config.Host
	}
	if mesh.LoopbackServer(server) {
		r.Log.Warnf(r.to.Context, "the remote secret's server %s is a loopback address, which istiod in %s cannot reach from its pod; pass --server %s=https://<an address of the API server that istiod reaches>", server, r.from.Context, r.to.Context)
	}
	// What this step writes is on record before it is written (the
	// reader, in reader), so that unlink can remove it after any failure.
	mp := &mesh.MultiPrimaryRecord{RemoteSecret: mesh.RemoteSecretName(name), ClusterName: name, Server: server, TokenBinding: mesh.TokenBindingName(r.from.Context)}
	reader, err := r.reader(ctx, mp)
	if err != nil {
		return err
	}
	mp.Reader, mp.ReaderOwned, mp.SecretRead = reader.name, reader.owned, reader.secretRead
	r.record.MultiPrimary = mp
	if err := r.savePending(ctx); err != nil {
		return err
	}
	if err := r.remoteSecret(ctx, mp); err != nil {
		return err
	}
	if err := r.dropPrevious(ctx, prev, mp); err != nil {
		return err
	}
	if err := r.networks(ctx, mp); err != nil {
		return err
	}
	r.record.MultiPrimary = mp
	return nil
}

// remoteSecret writes the remote secret of mp in from, with the token it
// holds when that is still good, else a new one.
func (r *run) remoteSecret(ctx context.Context, mp *mesh.MultiPrimaryRecord) error {
	ca, err := r.peerCA(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", r.to.Context, err)
	}
	if err := r.checkRemoteSecretOwner(ctx, mp.RemoteSecret); err != nil {
		return err
	}
	kubeconfig, err := r.reusableKubeconfig(ctx, mp, ca)
	if err != nil {
		return err
	}
	var newBinding *unstructured.Unstructured
	if kubeconfig == nil {
		var token string
		token, newBinding, err = r.newToken(ctx, mp)
		if err != nil {
			return fmt.Errorf("%s: reader token: %w", r.to.Context, err)
		}
		if kubeconfig, err = mesh.RemoteKubeconfig(mp.ClusterName, mp.Server, ca, token); err != nil {
			return r.dropBinding(ctx, newBinding, err)
		}
	}
	secret := mesh.RemoteSecret(mp.ClusterName, kubeconfig)
	shown := secret.DeepCopy()
	if redacted, err := mesh.RemoteKubeconfig(mp.ClusterName, mp.Server, ca, "REDACTED"); err == nil {
		shown.Data[mp.ClusterName] = redacted
	}
	r.Log.Object(shown)
	changed, err := r.fromW.Apply(ctx, gvrSecret, secret)
	if err != nil {
		err = fmt.Errorf("%s: %w", r.from.Context, err)
		if newBinding != nil {
			// The new token is in no remote secret: revoke it.
			err = r.dropBinding(ctx, newBinding, err)
		}
		return err
	}
	r.Log.Line(r.from.Context, changedIf(changed), "remote secret", fmt.Sprintf("Secret istio-system/%s: kubeconfig of %s (cluster name %s, server %s) for istiod", secret.Name, r.to.Context, mp.ClusterName, mp.Server))
	return nil
}

// dropPrevious removes what an earlier link wrote that this one replaced:
// the remote secret under an old cluster name, a reader of older versions.
func (r *run) dropPrevious(ctx context.Context, prev, mp *mesh.MultiPrimaryRecord) error {
	if prev != nil && prev.RemoteSecret != "" && prev.RemoteSecret != mp.RemoteSecret {
		deleted, err := r.fromW.DeleteManaged(ctx, gvrSecret, rules.IstioSystemNamespace, prev.RemoteSecret)
		if err != nil {
			return fmt.Errorf("%s: remove the remote secret under the old cluster name: %w", r.from.Context, err)
		}
		r.Log.Line(r.from.Context, changedIf(deleted), "remote secret", fmt.Sprintf("Secret istio-system/%s of the old cluster name removed", prev.RemoteSecret))
	}
	if prev != nil && isLegacyReader(prev) {
		if err := removeLegacyReader(ctx, r.Log, r.to, r.toW, prev); err != nil {
			return err
		}
	}
	return nil
}

// peerClusterName is the cluster name istiod in to runs with (its
// CLUSTER_ID, values.global.multiCluster.clusterName): the remote secret
// must carry it, and it must differ from from's, or istiod ignores the
// secret.
func (r *run) peerClusterName(ctx context.Context) (string, error) {
	to, toOK, err := IstiodFacts(ctx, r.to)
	if err != nil {
		return "", fmt.Errorf("%s: %w", r.to.Context, err)
	}
	name, how := to.ClusterName, fmt.Sprintf("clusterName of istiod %s", to.Deployment)
	if !toOK {
		name, how = r.to.Context, "the context's name: no istiod Deployment (label app=istiod) in istio-system; it must equal istiod's values.global.multiCluster.clusterName there"
	} else if !to.ClusterNameSet {
		how += " (Istio's default: CLUSTER_ID is not set)"
	}
	if err := mesh.ValidateClusterName(name); err != nil {
		return "", fmt.Errorf("%s: %w, from %s; install istiod there with values.global.multiCluster.clusterName set to a DNS-1123 label (lower case, e.g. %s)", r.to.Context, err, how, mesh.DNSLabel(r.to.Context))
	}
	if from, ok, err := IstiodFacts(ctx, r.from); err == nil && ok && from.ClusterName == name {
		return "", fmt.Errorf("%s and %s both run istiod with clusterName %q, and istiod ignores a remote secret for its own cluster name; give each cluster its own values.global.multiCluster.clusterName and reinstall istiod", r.from.Context, r.to.Context, name)
	}
	r.Log.Line(r.to.Context, OK, "cluster name", name+" ("+how+")")
	return name, nil
}

// IstiodFacts reads the istiod Deployment of a cluster; ok is false when
// it has none or it may not be read.
func IstiodFacts(ctx context.Context, c *cli.Cluster) (mesh.IstiodFacts, bool, error) {
	list, err := c.Kube.AppsV1().Deployments(rules.IstioSystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
	if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) {
		return mesh.IstiodFacts{}, false, nil
	}
	if err != nil {
		return mesh.IstiodFacts{}, false, fmt.Errorf("list istiod Deployments in istio-system: %w", err)
	}
	f, ok := mesh.IstiodFactsFrom(list.Items)
	return f, ok, nil
}

// peerCA is the CA of to's API server, as a token Secret's ca.crt (what
// istioctl puts in the remote secret) holds it: the ConfigMap
// kube-root-ca.crt that Kubernetes publishes in every namespace, else the
// kubeconfig's certificate authority.
func (r *run) peerCA(ctx context.Context) ([]byte, error) {
	cm, err := r.to.Kube.CoreV1().ConfigMaps(rules.IstioSystemNamespace).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
	if err == nil && cm.Data["ca.crt"] != "" {
		return []byte(cm.Data["ca.crt"]), nil
	}
	if len(r.to.Config.CAData) > 0 {
		return r.to.Config.CAData, nil
	}
	if r.to.Config.CAFile != "" {
		b, err := os.ReadFile(r.to.Config.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read the API server CA %s: %w", r.to.Config.CAFile, err)
		}
		return b, nil
	}
	return nil, errors.New("no CA for its API server: neither ConfigMap istio-system/kube-root-ca.crt nor a certificate authority in the kubeconfig; add certificate-authority-data to the kubeconfig's cluster")
}

// checkRemoteSecretOwner refuses to take over a remote secret kubectl mesh
// did not write (one of istioctl create-remote-secret, say).
func (r *run) checkRemoteSecretOwner(ctx context.Context, name string) error {
	s, err := r.from.Kube.CoreV1().Secrets(rules.IstioSystemNamespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: read Secret istio-system/%s: %w", r.from.Context, name, err)
	}
	if !rules.IsManaged(s.Labels) {
		return fmt.Errorf("%s: Secret istio-system/%s exists and was not written by kubectl mesh (istioctl create-remote-secret?); delete it (kubectl --context %s -n istio-system delete secret %s) so that link writes and renews its own", r.from.Context, name, r.from.Context, name)
	}
	return nil
}

// reusableKubeconfig returns the kubeconfig of the existing remote secret
// when it still says what link would write and its token is valid and not
// yet due for renewal, so that running link again changes nothing; nil when
// a new token is needed.
func (r *run) reusableKubeconfig(ctx context.Context, mp *mesh.MultiPrimaryRecord, ca []byte) ([]byte, error) {
	s, err := r.from.Kube.CoreV1().Secrets(rules.IstioSystemNamespace).Get(ctx, mp.RemoteSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: read Secret istio-system/%s: %w", r.from.Context, mp.RemoteSecret, err)
	}
	kc := s.Data[mp.ClusterName]
	view, err := mesh.ReadRemoteKubeconfig(kc)
	if err != nil || view.Server != mp.Server || !bytes.Equal(view.CAData, ca) {
		return nil, nil
	}
	claims, err := mesh.ReadTokenClaims(view.Token)
	if err != nil || claims.ServiceAccount != mp.Reader || claims.BoundSecret != mp.TokenBinding || claims.Expires.IsZero() {
		return nil, nil
	}
	binding, err := r.to.Kube.CoreV1().Secrets(rules.IstioSystemNamespace).Get(ctx, mp.TokenBinding, metav1.GetOptions{})
	if err != nil || string(binding.UID) != claims.BoundSecretUID {
		return nil, nil
	}
	renew := claims.RenewFrom(r.TokenRenewBefore)
	if !r.now().Before(renew) {
		r.Log.Line(r.to.Context, OK, "reader token", fmt.Sprintf("expires %s, within its renewal window (from %s): replacing it", claims.Expires.Format(time.RFC3339), renew.Format(time.RFC3339)))
		return nil, nil
	}
	exp := claims.Expires
	mp.TokenExpires = &exp
	r.Log.Line(r.to.Context, OK, "reader token", fmt.Sprintf("the remote secret's token of %s is valid until %s; link renews it from %s", mp.Reader, exp.Format(time.RFC3339), renew.Format(time.RFC3339)))
	return kc, nil
}

// isLegacyReader reports whether a record is of an older link, whose reader
// was a per-caller ServiceAccount, ClusterRole and ClusterRoleBinding.
func isLegacyReader(mp *mesh.MultiPrimaryRecord) bool {
	return mp.TokenBinding == "" && strings.HasPrefix(mp.Reader, "kubectl-mesh-reader-")
}

// removeLegacyReader deletes the per-caller reader of an older link: its
// ClusterRoleBinding, ClusterRole, token Secret (when it used one) and
// ServiceAccount.
func removeLegacyReader(ctx context.Context, log *StepLog, c *cli.Cluster, w cli.Writer, mp *mesh.MultiPrimaryRecord) error {
	type object struct {
		what      string
		gvr       schema.GroupVersionResource
		namespace string
		name      string
	}
	objs := []object{
		{"ClusterRoleBinding " + mp.Reader, gvrClusterRoleBinding, "", mp.Reader},
		{"ClusterRole " + mp.Reader, gvrClusterRole, "", mp.Reader},
	}
	if mp.TokenSecret != "" {
		objs = append(objs, object{"token Secret istio-system/" + mp.TokenSecret, gvrSecret, rules.IstioSystemNamespace, mp.TokenSecret})
	}
	objs = append(objs, object{"ServiceAccount istio-system/" + mp.Reader, gvrServiceAccount, rules.IstioSystemNamespace, mp.Reader})
	for _, o := range objs {
		deleted, err := w.DeleteManaged(ctx, o.gvr, o.namespace, o.name)
		if err != nil {
			return fmt.Errorf("%s: %w", c.Context, err)
		}
		log.Line(c.Context, changedIf(deleted), "reader", o.what+" of an older link deleted")
	}
	return nil
}
