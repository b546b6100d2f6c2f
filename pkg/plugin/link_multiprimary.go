package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// validateMultiPrimary checks the flags of --multi-primary and parses
// --network and --server by context.
func (o *LinkOptions) validateMultiPrimary() error {
	if !o.MultiPrimary {
		for flag, set := range map[string]bool{"--network": len(o.Networks) > 0, "--server": len(o.Servers) > 0, "--no-secret-read": o.NoSecretRead, "--token-renew-before": o.TokenRenewBefore != 0} {
			if set {
				return fmt.Errorf("%s only applies with --multi-primary", flag)
			}
		}
		return nil
	}
	if o.TokenExpiry < time.Hour {
		return fmt.Errorf("--token-expiry %s is too short for a remote secret; use at least 1h", o.TokenExpiry)
	}
	if o.TokenRenewBefore < 0 || o.TokenRenewBefore >= o.TokenExpiry {
		return fmt.Errorf("--token-renew-before %s must be positive and shorter than --token-expiry %s", o.TokenRenewBefore, o.TokenExpiry)
	}
	var err error
	if o.networks, err = o.byContext("--network", o.Networks, true, func(v string) error {
		if errs := validationLabelValue(v); errs != "" {
			return fmt.Errorf("network %q is not a label value: %s", v, errs)
		}
		return nil
	}); err != nil {
		return err
	}
	o.servers, err = o.byContext("--server", o.Servers, false, func(v string) error {
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("server %q is not an https URL such as https://10.0.0.2:6443", v)
		}
		return nil
	})
	return err
}

// byContext parses a flag given as VALUE (for --to; with --bidirectional,
// for both clusters when bothWays) or CONTEXT=VALUE naming --from or --to.
func (o *LinkOptions) byContext(flag string, vals []string, bothWays bool, check func(string) error) (map[string]string, error) {
	out := map[string]string{}
	set := func(ctx, v string) error {
		if old, ok := out[ctx]; ok && old != v {
			return fmt.Errorf("%s gives %s both %q and %q; give each cluster one", flag, ctx, old, v)
		}
		out[ctx] = v
		return nil
	}
	for _, raw := range vals {
		ctx, v, named := strings.Cut(raw, "=")
		if !named || strings.Contains(ctx, "://") {
			ctx, v = "", raw
		}
		if err := check(v); err != nil {
			return nil, fmt.Errorf("%s %s: %w", flag, raw, err)
		}
		switch {
		case ctx == "" && o.Bidirectional && !bothWays:
			return nil, fmt.Errorf("%s %s names no cluster, but --bidirectional calls both; give each as %s CONTEXT=VALUE", flag, raw, flag)
		case ctx == "" && o.Bidirectional:
			if err := set(o.From, v); err != nil {
				return nil, err
			}
			ctx = o.To
		case ctx == "":
			ctx = o.To
		case ctx != o.From && ctx != o.To:
			return nil, fmt.Errorf("%s %s names %q, which is neither --from %q nor --to %q", flag, raw, ctx, o.From, o.To)
		case ctx == o.From && !o.Bidirectional && flag == "--server":
			return nil, fmt.Errorf("%s %s names --from %q, which this link does not call; the server address is the called cluster's", flag, raw, ctx)
		}
		if err := set(ctx, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// multiPrimary gives --from's istiod a remote secret for --to, shaped like
// istioctl create-remote-secret's, holding a token of a reader account of
// --to, and labels the clusters' networks.
func (r *linkRun) multiPrimary(ctx context.Context) error {
	if !r.o.MultiPrimary {
		return nil
	}
	prev := r.record.MultiPrimary
	name, err := r.peerClusterName(ctx)
	if err != nil {
		return err
	}
	server := r.o.servers[r.to.Context]
	if server == "" {
		server = r.to.Config.Host
	}
	if mesh.LoopbackServer(server) {
		fmt.Fprintf(r.o.ErrOut, "Warning: %s: the remote secret's server %s is a loopback address, which istiod in %s cannot reach from its pod; pass --server %s=https://<an address of the API server that istiod reaches>\n", r.to.Context, server, r.from.Context, r.to.Context)
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
	var newBinding *corev1.Secret
	if kubeconfig == nil {
		var token string
		token, newBinding, err = r.newToken(ctx, mp)
		if err != nil {
			return fmt.Errorf("%s: reader token: %w", r.to.Context, err)
		}
		if kubeconfig, err = mesh.RemoteKubeconfig(name, server, ca, token); err != nil {
			return r.dropBinding(ctx, newBinding, err)
		}
	}
	secret := mesh.RemoteSecret(name, kubeconfig)
	shown := secret.DeepCopy()
	if redacted, err := mesh.RemoteKubeconfig(name, server, ca, "REDACTED"); err == nil {
		shown.Data[name] = redacted
	}
	r.log.object(shown)
	changed, err := r.fromA.apply(ctx, gvrSecret, secret)
	if err != nil {
		err = fmt.Errorf("%s: %w", r.from.Context, err)
		if newBinding != nil {
			// The new token is in no remote secret: revoke it.
			err = r.dropBinding(ctx, newBinding, err)
		}
		return err
	}
	r.log.line(r.from.Context, result(changed), "remote secret", fmt.Sprintf("Secret istio-system/%s: kubeconfig of %s (cluster name %s, server %s) for istiod", secret.Name, r.to.Context, name, server))
	if err := r.dropPrevious(ctx, prev, mp); err != nil {
		return err
	}
	if err := r.networks(ctx, mp); err != nil {
		return err
	}
	r.record.MultiPrimary = mp
	return nil
}

// dropPrevious removes what an earlier link wrote that this one replaced:
// the remote secret under an old cluster name, a reader of older versions.
func (r *linkRun) dropPrevious(ctx context.Context, prev, mp *mesh.MultiPrimaryRecord) error {
	if prev != nil && prev.RemoteSecret != "" && prev.RemoteSecret != mp.RemoteSecret {
		deleted, err := r.fromA.remove(ctx, gvrSecret, rules.IstioSystemNamespace, prev.RemoteSecret)
		if err != nil {
			return fmt.Errorf("%s: remove the remote secret under the old cluster name: %w", r.from.Context, err)
		}
		r.log.line(r.from.Context, result(deleted), "remote secret", fmt.Sprintf("Secret istio-system/%s of the old cluster name removed", prev.RemoteSecret))
	}
	if prev != nil && isLegacyReader(prev) {
		if err := removeLegacyReader(ctx, r.log, r.to, r.toA, prev); err != nil {
			return err
		}
	}
	return nil
}

// peerClusterName is the cluster name istiod in --to runs with (its
// CLUSTER_ID, values.global.multiCluster.clusterName): the remote secret
// must carry it, and it must differ from --from's, or istiod ignores the
// secret.
func (r *linkRun) peerClusterName(ctx context.Context) (string, error) {
	to, toOK, err := istiodFacts(ctx, r.to)
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
	if from, ok, err := istiodFacts(ctx, r.from); err == nil && ok && from.ClusterName == name {
		return "", fmt.Errorf("%s and %s both run istiod with clusterName %q, and istiod ignores a remote secret for its own cluster name; give each cluster its own values.global.multiCluster.clusterName and reinstall istiod", r.from.Context, r.to.Context, name)
	}
	r.log.line(r.to.Context, stepOK, "cluster name", name+" ("+how+")")
	return name, nil
}

// istiodFacts reads the istiod Deployment of a cluster; ok is false when
// it has none or it may not be read.
func istiodFacts(ctx context.Context, c *cli.Cluster) (mesh.IstiodFacts, bool, error) {
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

// peerCA is the CA of --to's API server, as a token Secret's ca.crt (what
// istioctl puts in the remote secret) holds it: the ConfigMap
// kube-root-ca.crt that Kubernetes publishes in every namespace, else the
// kubeconfig's certificate authority.
func (r *linkRun) peerCA(ctx context.Context) ([]byte, error) {
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
func (r *linkRun) checkRemoteSecretOwner(ctx context.Context, name string) error {
	s, err := r.from.Kube.CoreV1().Secrets(rules.IstioSystemNamespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: read Secret istio-system/%s: %w", r.from.Context, name, err)
	}
	if s.Labels[rules.ManagedByLabel] != rules.ManagedByValue {
		return fmt.Errorf("%s: Secret istio-system/%s exists and was not written by kubectl mesh (istioctl create-remote-secret?); delete it (kubectl --context %s -n istio-system delete secret %s) so that link writes and renews its own", r.from.Context, name, r.from.Context, name)
	}
	return nil
}

// reusableKubeconfig returns the kubeconfig of the existing remote secret
// when it still says what link would write and its token is valid and not
// yet due for renewal, so that running link again changes nothing; nil when
// a new token is needed.
func (r *linkRun) reusableKubeconfig(ctx context.Context, mp *mesh.MultiPrimaryRecord, ca []byte) ([]byte, error) {
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
	renew := claims.RenewFrom(r.o.TokenRenewBefore)
	if !r.o.now().Before(renew) {
		r.log.line(r.to.Context, stepOK, "reader token", fmt.Sprintf("expires %s, within its renewal window (from %s): replacing it", claims.Expires.Format(time.RFC3339), renew.Format(time.RFC3339)))
		return nil, nil
	}
	exp := claims.Expires
	mp.TokenExpires = &exp
	r.log.line(r.to.Context, stepOK, "reader token", fmt.Sprintf("the remote secret's token of %s is valid until %s; link renews it from %s", mp.Reader, exp.Format(time.RFC3339), renew.Format(time.RFC3339)))
	return kc, nil
}

// newToken asks the TokenRequest API of --to for a token of the reader
// with --token-expiry, bound to a fresh token binding Secret: replacing the
// binding revokes the token it replaces, and unlink's deleting it revokes
// this one. created is the binding made, which a later failure removes;
// a failure here removes it at once.
func (r *linkRun) newToken(ctx context.Context, mp *mesh.MultiPrimaryRecord) (_ string, created *corev1.Secret, err error) {
	binding := mesh.TokenBinding(r.from.Context, mp.Reader)
	r.log.object(binding)
	if !r.toA.writes() || r.o.DryRun == "server" {
		if _, err := r.toA.apply(ctx, gvrSecret, binding); err != nil {
			return "", nil, err
		}
		r.log.line(r.to.Context, stepChanged, "reader token", fmt.Sprintf("TokenRequest for ServiceAccount istio-system/%s, bound to Secret istio-system/%s (not asked in a dry run)", mp.Reader, binding.Name))
		return "REDACTED", nil, nil
	}
	secrets := r.to.Kube.CoreV1().Secrets(rules.IstioSystemNamespace)
	revoked, err := r.toA.remove(ctx, gvrSecret, rules.IstioSystemNamespace, binding.Name)
	if err != nil {
		return "", nil, err
	}
	made, err := secrets.Create(ctx, binding, metav1.CreateOptions{FieldManager: rules.FieldManager})
	if err != nil {
		return "", nil, fmt.Errorf("create token binding Secret istio-system/%s: %w", binding.Name, err)
	}
	defer func() {
		if err != nil {
			err = r.dropBinding(ctx, made, err)
		}
	}()
	secs := int64(r.o.TokenExpiry.Seconds())
	tr, err := r.to.Kube.CoreV1().ServiceAccounts(rules.IstioSystemNamespace).CreateToken(ctx, mp.Reader, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &secs,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: made.Name, UID: made.UID},
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
	detail := fmt.Sprintf("TokenRequest for ServiceAccount istio-system/%s, bound to Secret istio-system/%s, expires %s; run link again from %s to renew it", mp.Reader, binding.Name, exp.Format(time.RFC3339), claims.RenewFrom(r.o.TokenRenewBefore).Format(time.RFC3339))
	if revoked {
		detail += " (the token it replaces is revoked)"
	}
	r.log.line(r.to.Context, stepChanged, "reader token", detail)
	return tr.Status.Token, made, nil
}

// dropBinding deletes a token binding Secret this run created when what
// followed failed (or was interrupted): no remote secret holds its token,
// which the deletion revokes. It runs even when ctx is cancelled; err is
// the failure, returned with what was undone.
func (r *linkRun) dropBinding(ctx context.Context, binding *corev1.Secret, err error) error {
	uctx, cancel := cli.UndoContext(ctx)
	defer cancel()
	secrets := r.to.Kube.CoreV1().Secrets(rules.IstioSystemNamespace)
	opts := metav1.DeleteOptions{}
	if binding.UID != "" {
		opts.Preconditions = &metav1.Preconditions{UID: &binding.UID}
	}
	if derr := secrets.Delete(uctx, binding.Name, opts); derr != nil && !apierrors.IsNotFound(derr) {
		return fmt.Errorf("%w (and the token binding Secret istio-system/%s it made stays: %v; delete it by hand)", err, binding.Name, derr)
	}
	r.log.line(r.to.Context, stepChanged, "reader token", fmt.Sprintf("token binding Secret istio-system/%s removed again (undone): no remote secret holds its token", binding.Name))
	return err
}

// checkReaderToken asks --to, as the new token, what istiod needs: to list
// Services and EndpointSlices everywhere; and records whether it may read
// Secrets. RBAC caches of the API server may take a moment to see a new
// binding, so the lists are asked again for a few seconds.
func (r *linkRun) checkReaderToken(ctx context.Context, mp *mesh.MultiPrimaryRecord, token string) error {
	cfg := rest.AnonymousClientConfig(r.to.Config)
	cfg.BearerToken = token
	if r.to.Config.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		acc, err := readerAccess(ctx, cfg)
		if err != nil {
			return fmt.Errorf("ask %s what the new token may do: %w", r.to.Context, err)
		}
		if acc.Services && acc.EndpointSlices {
			mp.SecretRead = acc.Secrets
			if acc.Secrets != (mp.Reader == mesh.IstioReaderServiceAccount || mp.Reader == mesh.ReaderName) {
				fmt.Fprintf(r.o.ErrOut, "Warning: %s: ServiceAccount istio-system/%s %s Secrets, unlike its ClusterRole; another binding grants or denies it\n", r.to.Context, mp.Reader, map[bool]string{true: "may read", false: "may not read"}[acc.Secrets])
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

// isLegacyReader reports whether a record is of an older link, whose reader
// was a per-caller ServiceAccount, ClusterRole and ClusterRoleBinding.
func isLegacyReader(mp *mesh.MultiPrimaryRecord) bool {
	return mp.TokenBinding == "" && strings.HasPrefix(mp.Reader, "kubectl-mesh-reader-")
}

// removeLegacyReader deletes the per-caller reader of an older link: its
// ClusterRoleBinding, ClusterRole, token Secret (when it used one) and
// ServiceAccount.
func removeLegacyReader(ctx context.Context, log *stepLog, c *cli.Cluster, a applier, mp *mesh.MultiPrimaryRecord) error {
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
		deleted, err := a.remove(ctx, o.gvr, o.namespace, o.name)
		if err != nil {
			return fmt.Errorf("%s: %w", c.Context, err)
		}
		log.line(c.Context, result(deleted), "reader", o.what+" of an older link deleted")
	}
	return nil
}

// result is the step result of a write.
func result(changed bool) string {
	if changed {
		return stepChanged
	}
	return stepOK
}
