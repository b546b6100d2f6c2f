package status

import (
	"context"
	"errors"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/link"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/meshconfig"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// readMultiPrimary reads what the multi-primary checks need of a cluster:
// istiod's clusterName, the mesh ID, the network label, and every remote
// secret, each asked of the server it names as its token.
func (g gatherer) readMultiPrimary(ctx context.Context, c *cli.Cluster, cs *mesh.ClusterStatus, network string) {
	cs.Network = network
	if f, ok, err := link.IstiodFacts(ctx, c); err == nil && ok {
		cs.ClusterName = f.ClusterName
	}
	if cm, err := meshconfig.Find(ctx, c.Kube, ""); err == nil {
		cs.MeshID, _ = meshconfig.MeshID(cm.Data[meshconfig.Key])
	}
	list, err := c.Kube.CoreV1().Secrets(rules.IstioSystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: mesh.MultiClusterLabel + "=true"})
	if err != nil {
		cs.RemoteSecretsError = err.Error()
		return
	}
	for _, s := range list.Items {
		keys := make([]string, 0, len(s.Data))
		for k := range s.Data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			rs := mesh.RemoteSecretStatus{Cluster: cs.Context, Secret: s.Namespace + "/" + s.Name, ClusterName: k,
				Managed: rules.IsManaged(s.Labels)}
			g.probeRemote(ctx, &rs, s.Data[k])
			cs.RemoteSecrets = append(cs.RemoteSecrets, rs)
		}
	}
}

// probeRemote asks the server of a remote secret's kubeconfig, as its
// token, whether it may list Services and EndpointSlices and read Secrets.
func (g gatherer) probeRemote(ctx context.Context, rs *mesh.RemoteSecretStatus, kubeconfig []byte) {
	view, err := mesh.ReadRemoteKubeconfig(kubeconfig)
	if err != nil {
		rs.Error = err.Error()
		return
	}
	rs.Server = view.Server
	if claims, err := mesh.ReadTokenClaims(view.Token); err == nil {
		rs.Reader = claims.Namespace + "/" + claims.ServiceAccount
		if !claims.Expires.IsZero() {
			exp := claims.Expires
			rs.Expires = &exp
		}
	}
	remote, err := g.factory.ClusterFromKubeconfig(kubeconfig)
	if err != nil {
		rs.Error, rs.Server = err.Error(), ""
		return
	}
	tctx, cancel := g.bounded(ctx)
	defer cancel()
	acc, err := link.ReaderAccess(tctx, remote.Kube)
	var status *apierrors.StatusError
	switch {
	case err == nil:
		rs.Answers = true
		rs.ListServices, rs.ListEndpointSlices, rs.ReadSecrets = acc.Services, acc.EndpointSlices, acc.Secrets
	case apierrors.IsUnauthorized(err):
		rs.Answers, rs.Unauthorized, rs.Error = true, true, err.Error()
	case errors.As(err, &status):
		rs.Answers, rs.Error = true, err.Error()
	default:
		rs.Error = err.Error()
	}
}
