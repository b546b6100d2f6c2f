package plugin

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
)

// Issue 13, item 7: `certs root --rotate --force` during a rotation must
// not overwrite the previous root (clusters may still issue from it), and
// --dir naming an existing directory keeps its mode: only directories the
// tool creates are made 0700.
func TestCertsRootKeepsPreviousRootAndForeignDirectories(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	mustCerts(t, "root", "--dir", dir, "--key-algorithm", "ecdsa")
	mustCerts(t, "root", "--rotate", "--dir", dir, "--key-algorithm", "ecdsa")
	prevKey, err := os.ReadFile(filepath.Join(dir, pki.PreviousRootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	prevCert, err := os.ReadFile(filepath.Join(dir, pki.PreviousRootCertFile))
	if err != nil {
		t.Fatal(err)
	}
	out, err := runCerts(t, "root", "--rotate", "--force", "--dir", dir, "--key-algorithm", "ecdsa")
	if err == nil {
		t.Errorf("root --rotate --force during a rotation succeeded:\n%s", out)
	}
	for name, want := range map[string][]byte{pki.PreviousRootKeyFile: prevKey, pki.PreviousRootCertFile: prevCert} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s was overwritten by root --rotate --force (%v)", name, err)
		}
	}

	shared := t.TempDir()
	if err := os.Chmod(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	mustCerts(t, "root", "--dir", shared, "--key-algorithm", "ecdsa")
	if st, err := os.Stat(shared); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("an existing --dir was chmodded: %v, want it left 0755", st.Mode().Perm())
	}
	created := filepath.Join(shared, "made", "here")
	mustCerts(t, "root", "--dir", created, "--key-algorithm", "ecdsa")
	for _, d := range []string{filepath.Dir(created), created} {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s, made by the tool: %v, want 0700", d, st.Mode().Perm())
		}
	}
	if st, err := os.Stat(filepath.Join(shared, pki.RootKeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("root key in an existing directory: %v, want 0600", err)
	}
}

// An interrupt stops the file commands before the next files they write,
// and says which clusters got theirs.
func TestCertsStopOnInterrupt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	mustCerts(t, "root", "--dir", dir, "--key-algorithm", "ecdsa")
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(fmt.Errorf("%w by SIGINT (Ctrl-C)", cli.ErrInterrupted))
	streams, _, _ := certsStreams()
	cmd := NewCmdCerts(cli.Factory{}, streams)
	cmd.SetArgs([]string{"intermediate", "cluster1", "cluster2", "--dir", dir})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	err := cmd.ExecuteContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "not written for: cluster1, cluster2") {
		t.Fatalf("intermediate after an interrupt: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cluster1")); !os.IsNotExist(err) {
		t.Errorf("files written after the interrupt: %v", err)
	}
}
