// Command bench-vip measures VIP allocation with many existing claims on a
// lab API server: it starts a one-cluster lab, installs the VIPClaim CRD,
// creates -claims claims (concurrently, -workers at a time), then runs the
// allocations in fresh child processes, one per mode, so that each child's
// resident set is what a webhook replica would hold:
//
//   - plain: vip.Claims as is (each allocation lists the owner's claims by
//     label, which the API server answers by scanning every claim);
//   - cache: vip.Claims with a vip.Cache (a watch of all claims, kept
//     compact), so an allocation is one create.
//
// It prints p50/p90/p99/max allocation latency (including the round trip to
// the API server), the child's RSS and peak RSS, and the plain/cache ratios.
//
//	go run ./hack/bench-vip -claims 100000 -allocs 2000
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip/viptest"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

type options struct {
	claims, allocs, plainAllocs, workers int
	// child mode
	measure, kubeconfig string
}

// result is what a child reports.
type result struct {
	Mode        string          `json:"mode"`
	Allocs      int             `json:"allocs"`
	Latencies   []time.Duration `json:"latencies"`
	SyncSeconds float64         `json:"syncSeconds"`
	CachedLen   int             `json:"cachedLen"`
	RSSKiB      int             `json:"rssKiB"`
	PeakRSSKiB  int             `json:"peakRssKiB"`
	HeapKiB     uint64          `json:"heapKiB"`
}

func main() {
	var o options
	fs := flag.NewFlagSet("bench-vip", flag.ExitOnError)
	fs.IntVar(&o.claims, "claims", 100000, "existing claims to create before measuring")
	fs.IntVar(&o.allocs, "allocs", 2000, "allocations to measure with the cache")
	fs.IntVar(&o.plainAllocs, "plain-allocs", 200, "allocations to measure without the cache (each scans every claim on the API server)")
	fs.IntVar(&o.workers, "workers", 32, "concurrent creates while filling the cluster")
	fs.StringVar(&o.measure, "measure", "", "internal: measure one mode (plain|cache) against -kubeconfig and print JSON")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "internal: kubeconfig of the lab")
	_ = fs.Parse(os.Args[1:])
	var err error
	if o.measure != "" {
		err = child(o)
	} else {
		err = parent(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-vip:", err)
		os.Exit(1)
	}
}

func parent(o options) error {
	ctx := context.Background()
	l, err := lab.Start(ctx, lab.Options{Clusters: []string{"cluster1"}, NoFurniture: true, Log: os.Stderr})
	if err != nil {
		return err
	}
	defer func() { _ = l.Stop() }()
	cfg := rest.CopyConfig(l.Cluster("cluster1").Config)
	cfg.QPS, cfg.Burst = -1, 0
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := viptest.InstallCRD(ctx, dyn); err != nil {
		return err
	}
	start := time.Now()
	created, collisions, err := fill(ctx, dyn, o)
	if err != nil {
		return err
	}
	fmt.Printf("created %d claims in %s (%.0f/s, %d hash collisions skipped), %d workers\n",
		created, time.Since(start).Round(time.Second), float64(created)/time.Since(start).Seconds(), collisions, o.workers)

	var results []result
	for _, mode := range []string{"plain", "cache"} {
		n := o.allocs
		if mode == "plain" {
			n = o.plainAllocs
		}
		r, err := runChild(ctx, mode, n, l.Kubeconfig)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	fmt.Printf("\nVIP allocation with %d existing claims (sequential, one new ServiceEntry per allocation; latency includes the API round trip)\n", created)
	fmt.Printf("%-6s %6s %9s %9s %9s %9s %9s %9s %9s %8s\n", "mode", "allocs", "p50", "p90", "p99", "max", "rss", "peak-rss", "live-heap", "sync")
	for _, r := range results {
		fmt.Printf("%-6s %6d %9s %9s %9s %9s %7dMi %7dMi %7dMi %7.1fs\n", r.Mode, len(r.Latencies),
			pct(r.Latencies, 50), pct(r.Latencies, 90), pct(r.Latencies, 99), pct(r.Latencies, 100),
			r.RSSKiB/1024, r.PeakRSSKiB/1024, r.HeapKiB/1024, r.SyncSeconds)
	}
	p, c := results[0], results[1]
	fmt.Printf("\nratio plain/cache: p50 %.1fx, p99 %.1fx, rss %.2fx (cache holds %d claims)\n",
		ratio(pct(p.Latencies, 50), pct(c.Latencies, 50)), ratio(pct(p.Latencies, 99), pct(c.Latencies, 99)),
		float64(p.RSSKiB)/float64(c.RSSKiB), c.CachedLen)
	fmt.Printf("goal (cache): p99 ≤ 2ms → %s; rss ≤ 256Mi → %dMi\n", pct(c.Latencies, 99), c.RSSKiB/1024)
	return nil
}

// fill creates o.claims claims at the first candidates of distinct hosts,
// as allocation would place them.
func fill(ctx context.Context, dyn dynamic.Interface, o options) (created, collisions int64, err error) {
	claims := vip.NewClaims(dyn, rules.DefaultVIPSpace())
	space := claims.Space()
	var next atomic.Int64
	var nCreated, nColl atomic.Int64
	errs := make(chan error, o.workers)
	var wg sync.WaitGroup
	for range o.workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if nCreated.Load() >= int64(o.claims) {
					return
				}
				host := "svc-" + strconv.FormatInt(i, 10) + ".fill.global"
				ow := vip.Owner{Namespace: "fill", Name: "se-" + strconv.FormatInt(i, 10), Host: host}
				err := claims.Claim(ctx, space.Candidate(host), ow, false)
				if _, taken := err.(*vip.TakenError); taken {
					nColl.Add(1)
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				if n := nCreated.Add(1); n%10000 == 0 {
					fmt.Fprintf(os.Stderr, "bench-vip: %d claims\n", n)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	return nCreated.Load(), nColl.Load(), nil
}

func runChild(ctx context.Context, mode string, n int, kubeconfig string) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	cmd := exec.CommandContext(ctx, self, "-measure", mode, "-allocs", strconv.Itoa(n), "-kubeconfig", kubeconfig)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	var r result
	dec := json.NewDecoder(bufio.NewReader(out))
	derr := dec.Decode(&r)
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return result{}, fmt.Errorf("measure %s: %w", mode, err)
	}
	return r, derr
}

func child(o options) error {
	ctx := context.Background()
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = -1, 0
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	r := result{Mode: o.measure}
	var opts []vip.Option
	if o.measure == "cache" {
		c := vip.NewCache(dyn)
		go func() { _ = c.Start(ctx) }()
		start := time.Now()
		if err := c.WaitForSync(ctx); err != nil {
			return err
		}
		r.SyncSeconds = time.Since(start).Seconds()
		r.CachedLen = c.Len()
		opts = append(opts, vip.WithCache(c))
	}
	claims := vip.NewClaims(dyn, rules.DefaultVIPSpace(), opts...)
	alloc := func(i int) (time.Duration, error) {
		ow := vip.Owner{Namespace: "bench", Name: o.measure + "-" + strconv.Itoa(i), Host: "b-" + strconv.Itoa(i) + "." + o.measure + ".global"}
		start := time.Now()
		a, err := claims.Allocate(ctx, ow, false)
		d := time.Since(start)
		if err == nil && !a.IsValid() {
			err = fmt.Errorf("allocate for %v returned no address", ow)
		}
		return d, err
	}
	for i := range 20 { // warm up connections and caches
		if _, err := alloc(-1 - i); err != nil {
			return err
		}
	}
	for i := range o.allocs {
		d, err := alloc(i)
		if err != nil {
			return err
		}
		r.Latencies = append(r.Latencies, d)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.HeapKiB = ms.HeapAlloc / 1024
	r.RSSKiB, r.PeakRSSKiB = rss()
	return json.NewEncoder(os.Stdout).Encode(r)
}

// rss reads VmRSS and VmHWM (peak) of this process in KiB.
func rss() (cur, peak int) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "VmRSS:":
			cur = v
		case "VmHWM:":
			peak = v
		}
	}
	return cur, peak
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)].Round(10 * time.Microsecond)
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }
