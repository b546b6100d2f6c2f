// Package vip checks VIP claims end to end on a lab API server with the
// VIPClaim CRD installed: uniqueness under concurrent allocation by several
// allocators, races on one address, the CRD's own validation, and the repair
// loop (orphans, brownfield adoption, duplicate reports).
package vip

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip/viptest"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

var (
	theLab *lab.Lab
	// cfg reaches the cluster without client-side rate limiting: the tests
	// measure the API server's answers, not a token bucket.
	cfg  *rest.Config
	dyn  dynamic.Interface
	kube kubernetes.Interface
	// installedBefore is what Claims.Installed said before the CRD was
	// applied.
	installedBefore struct {
		ok  bool
		err error
	}
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("skipping end-to-end tests in -short mode")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.Options{Clusters: []string{"cluster1"}, NoFurniture: true, Log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := l.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	theLab = l
	cfg = rest.CopyConfig(l.Cluster("cluster1").Config)
	cfg.QPS, cfg.Burst = -1, 0
	if dyn, err = dynamic.NewForConfig(cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if kube, err = kubernetes.NewForConfig(cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	installedBefore.ok, installedBefore.err = vip.NewClaims(dyn, rules.DefaultVIPSpace()).Installed(ctx)
	if err := viptest.InstallCRD(ctx, dyn); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// cleanClaims deletes every claim when the test ends, so that tests do not
// see each other's claims.
func cleanClaims(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		if err := dyn.Resource(vip.GVR).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			t.Errorf("delete VIPClaims: %v", err)
		}
	})
}
