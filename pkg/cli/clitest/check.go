package clitest

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
)

// Corefile is a cluster DNS configuration as kubeadm writes it.
const Corefile = `.:53 {
    errors
    health
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
}
`

// CheckDryRun fails t unless writes are what a run with --dry-run=dry
// sends: nothing for a client dry run; otherwise at least one write, each
// marked dryRun=All exactly when the dry run is the server's.
func CheckDryRun(t testing.TB, dry cli.DryRun, writes []k8stesting.Action) {
	t.Helper()
	switch {
	case dry == cli.DryRunClient && len(writes) != 0:
		t.Errorf("--dry-run=client sent writes:\n%s", DescribeAll(writes))
		return
	case dry != cli.DryRunClient && len(writes) == 0:
		t.Errorf("--dry-run=%s sent no write", dry)
		return
	}
	for _, w := range writes {
		if marked := slices.Equal(DryRunOf(w), []string{metav1.DryRunAll}); marked != (dry == cli.DryRunServer) {
			t.Errorf("--dry-run=%s sent %s", dry, Describe(w))
		}
	}
}
