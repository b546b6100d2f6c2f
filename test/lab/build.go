package lab

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// TestVersion is stamped into product binaries built by BuildProduct.
const TestVersion = "v0.0.0-lab"

// BuildProduct builds the product's commands (kubectl-mesh, and
// mesh-webhook once it exists) from the working tree into dir, stamped with
// TestVersion, so end-to-end tests never run a stale bin/.
func BuildProduct(dir string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	for _, name := range []string{"kubectl-mesh", "mesh-webhook"} {
		if _, err := os.Stat(filepath.Join(root, "cmd", name, "main.go")); err != nil {
			continue
		}
		ldflags := "-X " + ModulePath + "/pkg/version.Version=" + TestVersion + " -X " + ModulePath + "/pkg/version.Commit=lab"
		cmd := exec.Command("go", "build", "-ldflags", ldflags, "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = root
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("lab: go build ./cmd/%s: %w: %s", name, err, stderr.String())
		}
	}
	return nil
}
