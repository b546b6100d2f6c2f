package plugin

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli/clitest"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
)

// richMesh is two fake clusters with every table of status filled: a link
// from cluster1 to cluster2, a pending link to cluster9 (not in the
// kubeconfig), a remote secret whose server refuses connections, and a
// route.
func richMesh(t *testing.T) clitest.Clusters {
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
	return clitest.Clusters{
		fakeCluster(t, "cluster1", "192.0.2.1", objs, handWrittenEntry, remoteSNIRule),
		fakeCluster(t, "cluster2", "203.0.113.7", []runtime.Object{httpbinService()}, sourceLocalRule, localPassthrough),
	}
}
