package link

import (
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Issue 13, item 3: kubectl's flags reach every context a command
// touches. --as makes every request of link (in --from and --to) as that
// user, who may do nothing here, so link fails before changing anything;
// kubectl's --server without --context is refused by a command reaching two
// clusters, since it would send both clusters' requests to one server
// (link's own --server is the remote secret's address).
func TestKubeconfigFlagsReachEveryContext(t *testing.T) {
	trust(t, "cluster1", "cluster2")
	before := configMap(t, "cluster1", "kube-system", "coredns")
	noRecord := func(t *testing.T) {
		t.Helper()
		if _, err := theLab.Cluster("cluster1").Kube.CoreV1().ConfigMaps("mesh-system").Get(t.Context(), "mesh-link-cluster2", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a link record was written: %v", err)
		}
		if got := configMap(t, "cluster1", "kube-system", "coredns"); got.ResourceVersion != before.ResourceVersion {
			t.Errorf("the Corefile was changed:\n%s", got.Data["Corefile"])
		}
	}

	_, stderr := meshFails(t, "link", "--from", "cluster1", "--to", "cluster2", "--as", "nobody@example.com")
	if !strings.Contains(stderr, `"nobody@example.com"`) || !strings.Contains(stderr, "forbidden") {
		t.Errorf("link --as nobody@example.com did not act as that user:\n%s", stderr)
	}
	noRecord(t)

	_, stderr = meshFails(t, "status", "--contexts", "cluster1,cluster2", "--as", "nobody@example.com")
	if !strings.Contains(stderr, "forbidden") {
		t.Errorf("status --as nobody@example.com did not act as that user:\n%s", stderr)
	}

	_, stderr = meshFails(t, "unlink", "--from", "cluster1", "--to", "cluster2", "--server", "https://127.0.0.1:1")
	if !strings.Contains(stderr, "--server") || !strings.Contains(stderr, "--context") {
		t.Errorf("unlink --server without --context was not refused naming both flags:\n%s", stderr)
	}
}
