package link

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
)

// trust compares the roots of both clusters' cacerts.
func (r *run) trust(ctx context.Context) error {
	fromFP, fromErr := RootFingerprints(ctx, r.from)
	toFP, toErr := RootFingerprints(ctx, r.to)
	const fix = "install certificates from one root in both with `kubectl mesh certs install` (see kubectl mesh certs install --help), or pass --skip-trust-check"
	var problem string
	switch {
	case fromErr != nil:
		problem = fmt.Sprintf("%s: %v", r.from.Context, fromErr)
	case toErr != nil:
		problem = fmt.Sprintf("%s: %v", r.to.Context, toErr)
	case SharedRoot(fromFP, toFP) == "":
		problem = fmt.Sprintf("the clusters trust different roots: %s has root %s, %s has root %s", r.from.Context, strings.Join(fromFP, ","), r.to.Context, strings.Join(toFP, ","))
	}
	if problem == "" {
		r.Log.Line(r.from.Context, OK, "trust", "both clusters share root "+SharedRoot(fromFP, toFP))
		return nil
	}
	if r.SkipTrustCheck {
		r.Log.Line(r.from.Context, Skipped, "trust", "--skip-trust-check: "+problem)
		return nil
	}
	return fmt.Errorf("%s; %s", problem, fix)
}

// SharedRoot is the first fingerprint of a that b has too; "" when none.
func SharedRoot(a, b []string) string {
	for _, fp := range a {
		if slices.Contains(b, fp) {
			return fp
		}
	}
	return ""
}

// RootFingerprints are the SHA-256 fingerprints of the roots in c's
// istio-system/cacerts.
func RootFingerprints(ctx context.Context, c *cli.Cluster) ([]string, error) {
	b, err := pki.ReadClusterBundle(ctx, c.Kube)
	if err != nil {
		return nil, err
	}
	roots, err := b.Roots()
	if err != nil {
		return nil, err
	}
	fps := make([]string, 0, len(roots))
	for _, root := range roots {
		fps = append(fps, pki.Fingerprint(root))
	}
	return fps, nil
}
