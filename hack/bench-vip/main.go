// Command bench-vip measures the VIPClaim cache and VIP allocation on a lab
// API server. It starts one bare lab cluster, installs the VIPClaim CRD and
// then, reusing that one cluster for every case:
//
//  1. with no claims, runs one child per cache mode (allocation latency at
//     0 claims);
//  2. creates -claims claims (-workers at a time, bounded by -fill-timeout:
//     a fill cut short goes on with the claims it made);
//  3. runs one child per mode again, -rounds times, interleaved (A/B/A/B),
//     so that load from other work on the machine falls on both modes.
//
// Each child is a fresh process, so its resident set is what one webhook
// replica would hold. The modes are:
//
//   - old: the cache before issue 12 (a watch of whole claims, a fat entry
//     per claim), measured by the "-measure cache" child of a bench-vip
//     built from that commit and given as -old-bench; its RSS is read after
//     the allocations, not right after the sync;
//   - object: vip.NewCache, a watch of whole claims (JSON) through a dynamic
//     client;
//   - metadata: vip.NewMetadataCache, a watch of claim metadata only
//     (protobuf), the owner read from labels and annotations;
//   - metadata-list: the same with client-go's WatchListClient feature off
//     (KUBE_FEATURE_WatchListClient=false): the initial state comes from a
//     list instead of a watch stream;
//   - plain: no cache (each allocation lists the owner's claims by label,
//     which the API server answers by scanning every claim); only with
//     -plain-allocs > 0.
//
// A child reports the cache's sync time (start to WaitForSync) and the CPU
// time the child spent until then (user+sys: what the sync costs the
// client, whatever the load on the machine), VmRSS right
// after the sync, VmHWM (peak RSS of the whole child), the live heap after a
// forced GC once the allocations are done, and the latency of -allocs
// sequential allocations for new entries (API round trip included). The
// allocations are deleted after each child, so every child sees -claims
// claims.
//
//	git archive fdd7b9c | tar -x -C /tmp/old && (cd /tmp/old && go build -o /tmp/bench-vip-old ./hack/bench-vip)
//	go run ./hack/bench-vip -claims 100000 -allocs 1000 -rounds 2 -modes old,metadata -old-bench /tmp/bench-vip-old
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
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
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip/viptest"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

const benchNamespace = "bench" // owner namespace of the measured allocations

type options struct {
	claims, allocs, plainAllocs, workers, rounds int
	fillTimeout                                  time.Duration
	modes, oldBench                              string
	// child mode
	measure, kubeconfig string
}

// result is what a child reports.
type result struct {
	Mode        string          `json:"mode"`
	Claims      int             `json:"claims"`
	Latencies   []time.Duration `json:"latencies"`
	SyncSeconds float64         `json:"syncSeconds"`
	SyncCPU     float64         `json:"syncCPU"`
	CachedLen   int             `json:"cachedLen"`
	SyncRSSKiB  int             `json:"syncRssKiB"`
	PeakRSSKiB  int             `json:"peakRssKiB"`
	HeapKiB     uint64          `json:"heapKiB"`
	// OldRSSKiB is VmRSS after the allocations, from an old child.
	OldRSSKiB int `json:"rssKiB"`
}

func main() {
	var o options
	fs := flag.NewFlagSet("bench-vip", flag.ExitOnError)
	fs.IntVar(&o.claims, "claims", 100000, "existing claims to create before measuring")
	fs.IntVar(&o.allocs, "allocs", 1000, "allocations to measure per child with a cache")
	fs.IntVar(&o.plainAllocs, "plain-allocs", 0, "allocations to measure without a cache (each scans every claim on the API server); 0 skips the plain mode")
	fs.IntVar(&o.workers, "workers", 32, "concurrent creates while filling the cluster")
	fs.IntVar(&o.rounds, "rounds", 2, "children per mode at -claims claims, interleaved")
	fs.DurationVar(&o.fillTimeout, "fill-timeout", 15*time.Minute, "stop filling after this long and measure with the claims made")
	fs.StringVar(&o.modes, "modes", "object,metadata", "cache modes to compare (old, object, metadata, metadata-list)")
	fs.StringVar(&o.oldBench, "old-bench", "", "bench-vip built from the commit before issue 12, for -modes old")
	fs.StringVar(&o.measure, "measure", "", "internal: measure one mode (plain|object|metadata) against -kubeconfig and print JSON")
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
	modes := strings.Split(o.modes, ",")
	var results []result
	var claimsNow int64
	run := func(mode string, n int) error {
		r, err := runChild(ctx, mode, n, l.Kubeconfig, o.oldBench)
		if err != nil {
			return err
		}
		r.Mode, r.Claims = mode, int(claimsNow)
		results = append(results, r)
		fmt.Fprintf(os.Stderr, "bench-vip: %s at %d claims: sync %.1fs, rss %dMi, p99 %s\n", mode, r.Claims, r.SyncSeconds, r.SyncRSSKiB/1024, pct(r.Latencies, 99))
		// Delete the child's allocations: every child sees the same claims.
		return dyn.Resource(vip.GVR).DeleteCollection(ctx, metav1.DeleteOptions{},
			metav1.ListOptions{LabelSelector: vip.OwnerNamespaceLabel + "=" + benchNamespace})
	}
	for _, mode := range modes {
		if err := run(mode, o.allocs); err != nil {
			return err
		}
	}
	start := time.Now()
	created, collisions, err := fill(ctx, dyn, o)
	if err != nil {
		return err
	}
	claimsNow = created
	fmt.Printf("created %d claims in %s (%.0f/s, %d hash collisions skipped), %d workers\n",
		created, time.Since(start).Round(time.Second), float64(created)/time.Since(start).Seconds(), collisions, o.workers)
	for range o.rounds {
		for _, mode := range modes {
			if err := run(mode, o.allocs); err != nil {
				return err
			}
		}
	}
	if o.plainAllocs > 0 {
		if err := run("plain", o.plainAllocs); err != nil {
			return err
		}
	}

	fmt.Printf("\nVIPClaim cache and allocation (sequential allocations, one new ServiceEntry each, latency includes the API round trip)\n")
	fmt.Printf("sync: Start to WaitForSync (cpu: the child's user+sys until then); rss-sync: VmRSS right after the sync; peak: VmHWM of the child; heap: live heap after GC at the end\n")
	fmt.Printf("%-13s %7s %6s %8s %7s %9s %9s %9s %9s %8s %8s %8s\n", "mode", "claims", "allocs", "sync", "cpu", "p50", "p90", "p99", "max", "rss-sync", "peak", "heap")
	for _, r := range results {
		fmt.Printf("%-13s %7d %6d %7.2fs %6.2fs %9s %9s %9s %9s %6dMi %6dMi %6dMi\n", r.Mode, r.Claims, len(r.Latencies), r.SyncSeconds, r.SyncCPU,
			pct(r.Latencies, 50), pct(r.Latencies, 90), pct(r.Latencies, 99), pct(r.Latencies, 100),
			r.SyncRSSKiB/1024, r.PeakRSSKiB/1024, r.HeapKiB/1024)
	}
	fmt.Println()
	for _, mode := range modes {
		var at0, atN []time.Duration
		for _, r := range results {
			switch {
			case r.Mode != mode:
			case r.Claims == 0:
				at0 = append(at0, r.Latencies...)
			default:
				atN = append(atN, r.Latencies...)
			}
		}
		if len(at0) > 0 && len(atN) > 0 {
			fmt.Printf("%s: allocation p99 at %d claims %s / at 0 claims %s = %.2f\n", mode, created,
				pct(atN, 99), pct(at0, 99), ratio(pct(atN, 99), pct(at0, 99)))
		}
	}
	return nil
}

// fill creates o.claims claims at the first candidates of distinct hosts,
// as allocation would place them, for at most o.fillTimeout.
func fill(ctx context.Context, dyn dynamic.Interface, o options) (created, collisions int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, o.fillTimeout)
	defer cancel()
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
				if nCreated.Load() >= int64(o.claims) || ctx.Err() != nil {
					return
				}
				host := "svc-" + strconv.FormatInt(i, 10) + ".fill.global"
				ow := vip.Owner{Namespace: "fill", Name: "se-" + strconv.FormatInt(i, 10), Host: host}
				err := claims.Claim(ctx, space.Candidate(host), ow, false)
				if _, taken := errors.AsType[*vip.TakenError](err); taken {
					nColl.Add(1)
					continue
				}
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
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
	if ctx.Err() != nil {
		fmt.Fprintf(os.Stderr, "bench-vip: -fill-timeout %s reached at %d claims; measuring with those\n", o.fillTimeout, nCreated.Load())
	}
	return nCreated.Load(), nColl.Load(), nil
}

func runChild(ctx context.Context, mode string, n int, kubeconfig, oldBench string) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	measure := mode
	if mode == "old" {
		if oldBench == "" {
			return result{}, errors.New("-modes old needs -old-bench")
		}
		self, measure = oldBench, "cache"
	}
	cmd := exec.CommandContext(ctx, self, "-measure", measure, "-allocs", strconv.Itoa(n), "-kubeconfig", kubeconfig)
	if mode == "metadata-list" {
		cmd.Env = append(os.Environ(), "KUBE_FEATURE_WatchListClient=false")
	}
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
	if mode == "old" && r.SyncRSSKiB == 0 {
		r.SyncRSSKiB = r.OldRSSKiB
	}
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
	var r result
	var c *vip.Cache
	switch o.measure {
	case "object":
		c = vip.NewCache(dyn)
	case "metadata", "metadata-list":
		meta, err := metadata.NewForConfig(cfg)
		if err != nil {
			return err
		}
		c = vip.NewMetadataCache(meta)
	case "plain":
	default:
		return fmt.Errorf("unknown mode %q", o.measure)
	}
	var opts []vip.Option
	if c != nil {
		start := time.Now()
		go func() { _ = c.Start(ctx) }()
		if err := c.WaitForSync(ctx); err != nil {
			return err
		}
		r.SyncSeconds = time.Since(start).Seconds()
		r.SyncCPU = cpuSeconds()
		r.SyncRSSKiB, _ = rss()
		r.CachedLen = c.Len()
		opts = append(opts, vip.WithCache(c))
	}
	claims := vip.NewClaims(dyn, rules.DefaultVIPSpace(), opts...)
	alloc := func(i int) (time.Duration, error) {
		ow := vip.Owner{Namespace: benchNamespace, Name: o.measure + "-" + strconv.Itoa(i), Host: "b-" + strconv.Itoa(i) + "." + o.measure + ".global"}
		start := time.Now()
		a, err := claims.Allocate(ctx, ow, false)
		d := time.Since(start)
		if err == nil && !a.IsValid() {
			err = fmt.Errorf("allocate for %v returned no address", ow)
		}
		return d, err
	}
	for i := range 20 { // warm up connections
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
	_, r.PeakRSSKiB = rss()
	runtime.KeepAlive(c)
	return json.NewEncoder(os.Stdout).Encode(r)
}

// cpuSeconds is the user and system time of this process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// rss reads VmRSS and VmHWM (peak) of this process in KiB.
func rss() (cur, peak int) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
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
