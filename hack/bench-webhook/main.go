// Command bench-webhook measures what admission of .global ServiceEntries
// costs, on one lab API server, in -rounds interleaved rounds. Each round
// times -n creates at concurrency -c for every case, in this order:
//
//	a   ServiceEntries without admission: no webhook configurations, no
//	    ValidatingAdmissionPolicy binding
//	b   ServiceEntries with the ValidatingAdmissionPolicy of deploy/webhook
//	    only (policy and binding, no webhooks)
//	cN  ServiceEntries with mesh-webhook as deployed: mutating and
//	    validating webhooks served by N processes, and the policy; one case
//	    per -replicas entry (c1, c2)
//	d   the anchor: Services of type ClusterIP, for which the API server
//	    allocates a unique IP in process
//
// It prints p50/p99 per case and round, per round the ratios cN/d and cN/a
// at p50 and p99, and the median of each ratio over the rounds. With
// -oversized it then sends, with mesh-webhook (the first -replicas entry)
// and the policy registered, one dry-run create of a 1,000-port ×
// 1,000-endpoint .global ServiceEntry and prints how long the answer took
// and the webhook processes' VmRSS/VmHWM before and after.
//
// The mesh-webhook processes of every replica count start once and run for
// the whole benchmark; a case is switched on and off by registering and
// deleting the webhook configurations and the policy binding (the policy
// itself stays), and is timed only after dry-run probes show the API server
// calls exactly what the case needs. Every case starts from an empty
// namespace: what it created is deleted (ServiceEntries after the case,
// Services after every batch that fits the lab's Service CIDR).
//
// The full measurement (make bench-webhook):
//
//	go run ./hack/bench-webhook -n 2000 -c 16 -rounds 3 -replicas 1,2 -oversized
//
// A smoke run, and the oversized entry alone:
//
//	go run ./hack/bench-webhook -n 50 -rounds 1
//	go run ./hack/bench-webhook -rounds 0 -replicas 1 -oversized
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// options are the command's flags.
type options struct {
	n, conc, rounds, warm int
	replicas              []int
	oversized             bool
	timeout               time.Duration
}

func main() {
	var o options
	var replicas string
	flag.IntVar(&o.n, "n", 2000, "timed creates per case and round")
	flag.IntVar(&o.conc, "c", 16, "concurrent creates")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds of all cases (0: none, e.g. with -oversized)")
	flag.IntVar(&o.warm, "warm", 50, "untimed creates before each case's timed ones")
	flag.StringVar(&replicas, "replicas", "1,2", "mesh-webhook process counts, each its own case (c1, c2, …)")
	flag.BoolVar(&o.oversized, "oversized", false, "also dry-run create a 1,000-port × 1,000-endpoint .global ServiceEntry with mesh-webhook registered")
	flag.DurationVar(&o.timeout, "timeout", time.Hour, "give up after this long")
	flag.Parse()
	var err error
	if o.replicas, err = parseReplicas(replicas); err == nil && (o.n <= 0 || o.conc <= 0 || o.rounds < 0 || o.warm < 0) {
		err = errors.New("-n and -c must be positive, -rounds and -warm not negative")
	}
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err = run(ctx, o, os.Stdout)
		stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-webhook:", err)
		os.Exit(1)
	}
}

// parseReplicas reads a comma-separated list of distinct positive counts.
func parseReplicas(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || r <= 0 || slices.Contains(out, r) {
			return nil, fmt.Errorf("-replicas %q: want distinct positive counts such as 1,2", s)
		}
		out = append(out, r)
	}
	return out, nil
}

// run sets the lab up, runs the rounds and the oversized check, and tears
// everything it started down again, also when it fails or is interrupted.
func run(ctx context.Context, o options, out io.Writer) error {
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	b, err := setup(ctx, o, out)
	if b != nil {
		defer b.close()
	}
	if err != nil {
		return err
	}
	cases := b.cases()
	var results []map[string]stats
	for r := 1; r <= o.rounds; r++ {
		res, err := b.round(ctx, cases, r, out)
		if err != nil {
			return fmt.Errorf("round %d: %w", r, err)
		}
		results = append(results, res)
		printRatios(out, fmt.Sprintf("round %d", r), ratiosOf(cases, []map[string]stats{res}))
	}
	if len(results) > 1 {
		printRatios(out, fmt.Sprintf("median over %d rounds", len(results)), ratiosOf(cases, results))
	}
	if o.oversized {
		return b.oversized(ctx, b.hooks[0], out)
	}
	return nil
}

// round runs every case once, in order, printing each as it ends.
func (b *bench) round(ctx context.Context, cases []benchCase, round int, out io.Writer) (map[string]stats, error) {
	res := map[string]stats{}
	for _, c := range cases {
		lat, err := b.runCase(ctx, c, round)
		if err != nil {
			return nil, fmt.Errorf("case %s: %w", c.name, err)
		}
		res[c.name] = statsOf(lat)
		printCase(out, round, c, res[c.name])
	}
	return res, nil
}
