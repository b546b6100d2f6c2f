package link

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

// Issue 13, item 4: SIGINT while link --multi-primary waits for a token
// controller to fill the reader's temporary token Secret (the lab has
// none, so link waits 3 s) removes that Secret again, says so, and exits
// non-zero; the record of what link did is left for unlink, which then
// removes the rest.
func TestLinkInterruptedRemovesTokenSecret(t *testing.T) {
	trust(t, "cluster1", "cluster2")
	ctx := t.Context()
	secrets := theLab.Cluster("cluster2").Kube.CoreV1().Secrets("istio-system")
	const tokenSecret = "kubectl-mesh-reader-cluster1-token"

	kubectl, err := lab.Binary("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	env, err := theLab.Env()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kubectl, "mesh", "link", "--from", "cluster1", "--to", "cluster2", "--multi-primary")
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if _, err := secrets.Get(ctx, tokenSecret, metav1.GetOptions{}); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("link ended before it made the token Secret: %v\n%s%s", err, stdout.String(), stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the token Secret never appeared\n%s%s", stdout.String(), stderr.String())
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-exited:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("link did not end within a minute of SIGINT\n%s%s", stdout.String(), stderr.String())
	}
	t.Logf("kubectl mesh link, interrupted:\n%s%s", stdout.String(), stderr.String())
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("interrupted link: %v, want a non-zero exit", err)
	}
	if _, err := secrets.Get(ctx, tokenSecret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the temporary token Secret was left behind: %v", err)
	}
	out := stdout.String() + stderr.String()
	for _, want := range []string{"removed again (undone)", "interrupted by SIGINT", "unlink"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output does not say %q", want)
		}
	}

	kubectlMesh(t, "unlink", "--from", "cluster1", "--to", "cluster2")
	if _, err := theLab.Cluster("cluster2").Kube.CoreV1().ServiceAccounts("istio-system").Get(ctx, "kubectl-mesh-reader-cluster1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("unlink after the interrupted link left the reader ServiceAccount: %v", err)
	}
}
