package lab

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"
)

// Setup prepares a started lab for a test package, e.g. installs
// mesh-webhook; the returned teardown (may be nil) runs after the tests.
type Setup func(ctx context.Context, l *Lab, binDir string) (teardown func(), err error)

// RunTests is the body of an end-to-end package's TestMain: it skips the
// package in -short mode, builds the product from the working tree into a
// temporary directory that it puts on the lab's PATH (so `kubectl mesh`
// resolves through kubectl's plugin discovery to fresh binaries), starts a
// lab with opts, runs setup, runs the tests and stops everything. It returns
// the exit code for os.Exit.
func RunTests(m *testing.M, opts Options, setup Setup) int {
	flag.Parse()
	if testing.Short() {
		fmt.Println("skipping end-to-end tests in -short mode")
		return 0
	}
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	binDir, err := os.MkdirTemp("", "kubectl-mesh-e2e-bin-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(binDir)
	if err := BuildProduct(binDir); err != nil {
		return fail(err)
	}
	l, err := Start(ctx, opts)
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err := l.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	l.PathPrepend = binDir
	if setup != nil {
		teardown, err := setup(ctx, l, binDir)
		if err != nil {
			return fail(err)
		}
		if teardown != nil {
			defer teardown()
		}
	}
	return m.Run()
}
