package plugin

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
)

// richMesh is two fake clusters with every table of status filled: a link
// from cluster1 to cluster2, a pending link to cluster9 (not in the
// kubeconfig), a remote secret whose server refuses connections, and a
// route; the kubeconfig names both clusters.
func richMesh(t *testing.T) (clusters map[string]*cli.Cluster, kubeconfig string) {
	t.Helper()
	var objs []runtime.Object
	for _, r := range []mesh.Record{
		{Peer: "cluster2", Gateway: "203.0.113.7:15443"},
		{Peer: "cluster9", Gateway: "198.51.100.9:15443", Pending: true},
	} {
		cm, err := r.ConfigMap()
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, cm)
	}
	kc, err := mesh.RemoteKubeconfig("cluster2", "https://127.0.0.1:1", nil, "token")
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs, mesh.RemoteSecret("cluster2", kc))
	clusters = map[string]*cli.Cluster{
		"cluster1": fakeCluster(t, "cluster1", "192.0.2.1", objs, handWrittenEntry, remoteSNIRule),
		"cluster2": fakeCluster(t, "cluster2", "203.0.113.7", []runtime.Object{httpbinService()}, sourceLocalRule, localPassthrough),
	}
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	const doc = `apiVersion: v1
kind: Config
clusters:
- {name: c1, cluster: {server: "https://192.0.2.1:6443"}}
- {name: c2, cluster: {server: "https://203.0.113.7:6443"}}
users:
- {name: u, user: {token: t}}
contexts:
- {name: cluster1, context: {cluster: c1, user: u}}
- {name: cluster2, context: {cluster: c2, user: u}}
current-context: cluster1
`
	if err := os.WriteFile(kubeconfig, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return clusters, kubeconfig
}
