package certs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
)

// VerifyRequest is one `certs verify`, its flags parsed.
type VerifyRequest struct {
	// Dir is checked when CheckDir is set: its root, and every cluster
	// directory in it.
	Dir      string
	CheckDir bool
	// Targets are the clusters whose cacerts Secret is checked.
	Targets    []Target
	WarnWithin time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// VerifyResult is the outcome of `certs verify`, as printed by -o json.
type VerifyResult struct {
	OK bool `json:"ok"`
	// Files are the reports of the cluster directories under --dir.
	Files []*pki.Report `json:"files,omitempty"`
	// Clusters are the reports of the cacerts Secrets of --contexts.
	Clusters []*pki.Report `json:"clusters,omitempty"`
	// SharedRoots are the roots every cluster trusts.
	SharedRoots []string `json:"sharedRoots,omitempty"`
	Errors      []string `json:"errors,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
}

// Verify checks the files and the clusters req names. A cluster that
// cannot be read is an error in its report, not of Verify: the result says
// everything that is wrong, and OK says whether anything is.
func Verify(ctx context.Context, f cli.Factory, req VerifyRequest) *VerifyResult {
	res := &VerifyResult{}
	at := now(req.Now)
	if req.CheckDir {
		reports, errs, warnings := verifyDir(req.Dir, at, req.WarnWithin)
		res.Files = reports
		res.Errors = append(res.Errors, errs...)
		res.Warnings = append(res.Warnings, warnings...)
		_, shareErrs := pki.CheckShared(reports)
		res.Errors = append(res.Errors, shareErrs...)
	}
	if len(req.Targets) > 0 {
		for _, t := range req.Targets {
			res.Clusters = append(res.Clusters, verifyCluster(ctx, f, t, at, req.WarnWithin))
		}
		shared, shareErrs := pki.CheckShared(res.Clusters)
		res.SharedRoots = shared
		res.Errors = append(res.Errors, shareErrs...)
	}
	for _, r := range append(append([]*pki.Report{}, res.Files...), res.Clusters...) {
		for _, e := range r.Errors {
			res.Errors = append(res.Errors, r.Source+": "+e)
		}
		for _, w := range r.Warnings {
			res.Warnings = append(res.Warnings, r.Source+": "+w)
		}
	}
	res.OK = len(res.Errors) == 0
	return res
}

// verifyCluster checks the cacerts Secret of one cluster.
func verifyCluster(ctx context.Context, f cli.Factory, t Target, at time.Time, warnWithin time.Duration) *pki.Report {
	r := &pki.Report{Source: t.Name}
	c, err := f.Cluster(t.Context)
	if err == nil {
		var b *pki.Bundle
		if b, err = pki.ReadClusterBundle(ctx, c.Kube); err == nil {
			r = pki.VerifyBundle(t.Name, b, at, warnWithin)
		}
	}
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	return r
}

// verifyDir checks the root of dir and every cluster directory in it.
// The root's key is not needed (it is often kept offline); when it is
// there, a key that does not match is a warning: signing new intermediates
// will fail, the mesh does not.
func verifyDir(dir string, at time.Time, warnWithin time.Duration) (reports []*pki.Report, errs, warnings []string) {
	rootPath := filepath.Join(dir, pki.RootCertFile)
	var rootFP string
	if _, err := os.Stat(rootPath); err == nil {
		root, err := pki.LoadCACert(rootPath, at)
		if err != nil {
			errs = append(errs, err.Error())
		} else {
			rootFP = pki.Fingerprint(root.Cert)
			keyPath := filepath.Join(dir, pki.RootKeyFile)
			if _, err := os.Stat(keyPath); err == nil {
				if err := root.LoadKey(keyPath); err != nil {
					warnings = append(warnings, err.Error()+"; `certs intermediate` and `certs rotate` cannot sign with it")
				}
			}
		}
	}
	clusters, err := clusterDirs(dir)
	if err != nil {
		return nil, append(errs, err.Error()), warnings
	}
	if len(clusters) == 0 {
		errs = append(errs, fmt.Sprintf("%s holds no cluster directories (<cluster>/ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem); make them with `kubectl mesh certs intermediate CLUSTER…`", dir))
	}
	for _, c := range clusters {
		reports = append(reports, verifyClusterDir(dir, c, rootFP, at, warnWithin))
	}
	return reports, errs, warnings
}

// verifyClusterDir checks one cluster directory of dir, whose root has the
// fingerprint rootFP ("" when dir holds no root).
func verifyClusterDir(dir, c, rootFP string, at time.Time, warnWithin time.Duration) *pki.Report {
	cdir := filepath.Join(dir, c)
	b, err := pki.LoadBundle(cdir)
	if err != nil {
		return &pki.Report{Source: cdir, Errors: []string{err.Error()}}
	}
	r := pki.VerifyBundle(cdir, b, at, warnWithin)
	// Intermediates made here from now on would not be trusted by a
	// cluster whose root-cert.pem lacks the root of dir (e.g. after a
	// --force re-run of `certs root`).
	if rootFP != "" && !slices.ContainsFunc(r.Roots, func(c pki.CertInfo) bool { return c.Fingerprint == rootFP }) {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s does not hold the root of %s (%s), so it will not trust intermediates made from that root; re-create it with `kubectl mesh certs intermediate %s --force`", pki.RootCertFile, filepath.Join(dir, pki.RootCertFile), pki.Short(rootFP), c))
	}
	return r
}
