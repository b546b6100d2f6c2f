// Command bench-webhook measures what mesh-webhook adds to ServiceEntry
// creates: it starts a lab API server, creates -n .global ServiceEntries
// without addresses at concurrency -c, then installs mesh-webhook (mutating
// and validating webhooks, -replicas processes, real TLS) and creates -n
// more, and prints p50/p99 latency of both runs and their ratio.
//
//	go run ./hack/bench-webhook [-n 2000] [-c 16] [-replicas 2]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

var seGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "serviceentries"}

func main() {
	n := flag.Int("n", 2000, "creates per run")
	c := flag.Int("c", 16, "concurrent creates")
	replicas := flag.Int("replicas", 2, "mesh-webhook processes behind the loopback proxy")
	flag.Parse()
	if err := run(*n, *c, *replicas, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench-webhook:", err)
		os.Exit(1)
	}
}

func run(n, conc, replicas int, out io.Writer) error {
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	binDir, err := os.MkdirTemp("", "bench-webhook-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(binDir)
	if err := lab.BuildWebhook(binDir); err != nil {
		return err
	}
	l, err := lab.Start(ctx, lab.Options{Clusters: []string{"bench"}, NoFurniture: true})
	if err != nil {
		return err
	}
	defer func() { _ = l.Stop() }()
	cl := l.Clusters[0]
	if _, err := cl.Kube.CoreV1().Namespaces().Create(ctx, namespace("bench"), metav1.CreateOptions{}); err != nil {
		return err
	}
	cfg := rest.CopyConfig(cl.Config)
	cfg.QPS, cfg.Burst = 5000, 5000
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	// Warm up the API server's paths for ServiceEntries.
	if _, err := creates(ctx, dyn, "warm", 50, conc); err != nil {
		return err
	}
	without, err := creates(ctx, dyn, "plain", n, conc)
	if err != nil {
		return err
	}
	w, err := cl.InstallWebhook(ctx, lab.WebhookOptions{Replicas: replicas, BinDir: binDir})
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	if _, err := creates(ctx, dyn, "warmhook", 50, conc); err != nil {
		return err
	}
	with, err := creates(ctx, dyn, "hooked", n, conc)
	if err != nil {
		return err
	}
	p50a, p99a := percentile(without, 50), percentile(without, 99)
	p50b, p99b := percentile(with, 50), percentile(with, 99)
	_, _ = fmt.Fprintf(out, "ServiceEntry creates: n=%d per run, concurrency %d, mesh-webhook replicas %d\n", n, conc, replicas)
	_, _ = fmt.Fprintf(out, "%-22s p50 %8s  p99 %8s\n", "without webhooks", p50a.Round(10*time.Microsecond), p99a.Round(10*time.Microsecond))
	_, _ = fmt.Fprintf(out, "%-22s p50 %8s  p99 %8s\n", "with both webhooks", p50b.Round(10*time.Microsecond), p99b.Round(10*time.Microsecond))
	_, _ = fmt.Fprintf(out, "ratio with/without     p50 %8.2f  p99 %8.2f   (goal p99 <= 1.5)\n", float64(p50b)/float64(p50a), float64(p99b)/float64(p99a))
	return nil
}

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// creates makes n entries named prefix-i at concurrency conc and returns
// each create's latency.
func creates(ctx context.Context, dyn dynamic.Interface, prefix string, n, conc int) ([]time.Duration, error) {
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for i := range next {
				o := entry(fmt.Sprintf("%s-%d", prefix, i))
				start := time.Now()
				_, errs[i] = dyn.Resource(seGVR).Namespace("bench").Create(ctx, o, metav1.CreateOptions{})
				lat[i] = time.Since(start)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("create %s-%d: %w", prefix, i, err)
		}
	}
	return lat, nil
}

func entry(name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "ServiceEntry",
		"metadata":   map[string]any{"name": name, "namespace": "bench"},
		"spec": map[string]any{
			"hosts":      []any{name + ".bench.global"},
			"location":   "MESH_INTERNAL",
			"resolution": "DNS",
			"ports":      []any{map[string]any{"name": "http", "number": int64(8000), "protocol": "HTTP"}},
			"endpoints":  []any{map[string]any{"address": "203.0.113.7", "labels": map[string]any{"cluster": "c2"}}},
		},
	}}
}

func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i]
}
