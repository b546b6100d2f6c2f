package lab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// ModulePath is the product's Go module, used to find the repository root.
const ModulePath = "github.com/kubectl-mesh/kubectl-mesh"

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// RepoRoot finds the repository root by walking up from the working
// directory to the go.mod of ModulePath.
func RepoRoot() (string, error) {
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		for {
			b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && bytes.Contains(b, []byte("module "+ModulePath+"\n")) {
				rootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				rootErr = errors.New("lab: not inside the kubectl-mesh repository (no go.mod of " + ModulePath + " above the working directory)")
				return
			}
			dir = parent
		}
	})
	return rootDir, rootErr
}

// BinDir is where `make tools` puts kube-apiserver, etcd and kubectl
// (and `make build` the product's binaries): <repo>/bin, or $LAB_BIN_DIR.
func BinDir() (string, error) {
	if d := os.Getenv("LAB_BIN_DIR"); d != "" {
		return filepath.Abs(d)
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin"), nil
}

// Binary returns the path of a program in BinDir, with an error that says
// how to build it when it is missing.
func Binary(name string) (string, error) {
	dir, err := BinDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("lab: %s not found in %s; run `make tools` (lab programs) or `make build` (kubectl-mesh, mesh-webhook)", name, dir)
	}
	return p, nil
}

// IstioCRDPath is Istio's CRD bundle from the istio.io/api module the
// product's go.mod pins.
func IstioCRDPath() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "mod", "download", "-json", "istio.io/api")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("lab: go mod download istio.io/api: %w: %s", err, stderr.String())
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", fmt.Errorf("lab: go mod download istio.io/api: %w", err)
	}
	p := filepath.Join(mod.Dir, "kubernetes", "customresourcedefinitions.gen.yaml")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("lab: Istio CRDs not found in istio.io/api: %w", err)
	}
	return p, nil
}
