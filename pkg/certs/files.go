package certs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
)

// Target is one cluster a command talks to: the name its files are kept
// under and the kubeconfig context that reaches it.
type Target struct {
	Name    string
	Context string
}

// clusterDirs lists the subdirectories of dir that hold a cluster's files.
func clusterDirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read --dir %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), pki.CACertFile)); err == nil {
				out = append(out, e.Name())
			}
		}
	}
	return out, nil
}

// stopped returns an error when ctx was interrupted, saying which clusters'
// files were written and which not (none when both are nil).
func stopped(ctx context.Context, done, left []string) error {
	cause := cli.Interrupted(ctx)
	if cause == nil {
		return nil
	}
	if done == nil && left == nil {
		return fmt.Errorf("%w; nothing was written", cause)
	}
	written := strings.Join(done, ", ")
	if written == "" {
		written = "none"
	}
	return fmt.Errorf("%w; files written for: %s; not written for: %s; run the command again for those", cause, written, strings.Join(left, ", "))
}
