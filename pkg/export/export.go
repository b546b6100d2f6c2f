package export

import (
	"context"
	"fmt"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
)

// Export makes req's Services of the source callable in every target: it
// reads the source once, exports into all targets at once, then writes
// the source's version rule of every Service some target now holds. The
// error is for a run that did nothing (the source could not be read);
// what a run did, and what of it failed, is in the Result.
func Export(ctx context.Context, f cli.Factory, req Request) (*Result, error) {
	f = f.WithRateLimit(qps, burst)
	src, err := readSource(ctx, f, req)
	if err != nil {
		return nil, err
	}
	for _, w := range src.Gateway.Warnings {
		warn(req.Warnings, "%s: %s", src.Context, w)
	}
	results := make([]targetResult, len(req.To))
	cli.ForEach(len(req.To), len(req.To), func(i int) {
		results[i] = exportTo(ctx, f, req, req.To[i], src)
	})
	exported := map[string][]string{} // service → targets that hold it now
	for i, r := range results {
		for _, svc := range src.Services {
			if r.succeeded[svc.Name] {
				exported[svc.Name] = append(exported[svc.Name], req.To[i]+"/"+req.TargetNamespace)
			}
		}
	}
	var local []cli.Row
	if cli.Interrupted(ctx) == nil {
		local = writeLocalRules(ctx, req, src, exported)
	}

	var rows []cli.Row
	for _, svc := range src.Services {
		if svc.Err != nil {
			rows = append(rows, cli.Row{Cluster: src.Context, Kind: "Service", Namespace: req.Namespace, Name: svc.Name, Action: cli.Failed, Err: svc.Err})
		}
	}
	for _, r := range results {
		rows = append(rows, r.rows...)
	}
	rows = append(rows, local...)
	for i, r := range results {
		seen := map[string]bool{}
		for _, w := range r.warnings {
			if !seen[w] {
				seen[w] = true
				warn(req.Warnings, "%s: %s", req.To[i], w)
			}
		}
	}
	res := &Result{Rows: rows, Err: cli.Failures(rows, "export")}
	if cause := cli.Interrupted(ctx); cause != nil {
		res.Err = fmt.Errorf("export %w: every target that had not finished is as it was before (the table marks what was undone); run the same export again to finish", cause)
	}
	return res, nil
}
