package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

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
func (o *StatusOptions) readMultiPrimary(ctx context.Context, c *cli.Cluster, cs *mesh.ClusterStatus, network string) {
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
				Managed: s.Labels[rules.ManagedByLabel] == rules.ManagedByValue}
			o.probeRemote(ctx, &rs, s.Data[k])
			cs.RemoteSecrets = append(cs.RemoteSecrets, rs)
		}
	}
}

// probeRemote asks the server of a remote secret's kubeconfig, as its
// token, whether it may list Services and EndpointSlices and read Secrets.
func (o *StatusOptions) probeRemote(ctx context.Context, rs *mesh.RemoteSecretStatus, kubeconfig []byte) {
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
	remote, err := o.factory.ClusterFromKubeconfig(kubeconfig)
	if err != nil {
		rs.Error, rs.Server = err.Error(), ""
		return
	}
	tctx, cancel := context.WithTimeout(ctx, o.Timeout)
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

// printMultiPrimary is the MESH and REMOTE SECRETS tables, when a cluster
// has remote secrets.
func printMultiPrimary(out io.Writer, rep *mesh.Report) error {
	if !slices.ContainsFunc(rep.Clusters, func(cs *mesh.ClusterStatus) bool { return len(cs.RemoteSecrets) > 0 }) {
		return nil
	}
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CLUSTER\tCLUSTER NAME\tMESH ID\tNETWORK")
	for _, cs := range rep.Clusters {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", cs.Context, orDash(cs.ClusterName), orDash(cs.MeshID), orDash(cs.Network))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "REMOTE SECRET\tFOR\tPEER\tSERVER\tANSWERS\tSERVICES\tENDPOINTSLICES\tSECRETS\tTOKEN EXPIRES")
	for _, cs := range rep.Clusters {
		for _, rs := range cs.RemoteSecrets {
			exp := "never"
			if rs.Expires != nil {
				exp = rs.Expires.Format("2006-01-02")
			}
			answers := yesNo(rs.Answers)
			if rs.Unauthorized {
				answers = "rejects token"
			}
			secrets := "no"
			if rs.ReadSecrets {
				secrets = "reads (cacerts too)"
			}
			fmt.Fprintf(w, "%s: %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cs.Context, rs.Secret, rs.ClusterName, orDash(rs.Peer), orDash(rs.Server), answers,
				yesNo(rs.ListServices), yesNo(rs.ListEndpointSlices), secrets, exp)
		}
	}
	return w.Flush()
}
