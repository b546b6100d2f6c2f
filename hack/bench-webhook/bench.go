package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

// ns is where the benchmark creates its objects.
const ns = "bench"

// bench is the running lab, its clients and the mesh-webhook processes.
type bench struct {
	o      options
	dyn    dynamic.Interface
	kube   kubernetes.Interface
	hooks  []*lab.Webhook // one per o.replicas entry, same order
	ipBase int            // IPAddress objects before any Service; -1: not served
	stops  []func()
}

// benchCase is one measured case.
type benchCase struct {
	name, label string
	adm         admission
	services    bool // time Service creates instead of ServiceEntries
}

// setup starts the lab API server and one mesh-webhook per replica count,
// and installs the (unbound) ValidatingAdmissionPolicy. On error the
// returned bench, if any, still needs close.
func setup(ctx context.Context, o options, out io.Writer) (*bench, error) {
	b := &bench{o: o}
	binDir, err := os.MkdirTemp("", "bench-webhook-bin-")
	if err != nil {
		return nil, err
	}
	b.stops = append(b.stops, func() { _ = os.RemoveAll(binDir) })
	start := time.Now()
	l, cl, err := startLab(ctx, binDir)
	if err != nil {
		return b, err
	}
	b.stops = append(b.stops, func() { _ = l.Stop() })
	cfg := rest.CopyConfig(cl.Config)
	cfg.QPS, cfg.Burst = 5000, 5000
	// Hand-written test entries draw a warning each; the latency is what counts.
	cfg.WarningHandler = rest.NoWarnings{}
	if b.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return b, err
	}
	if b.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return b, err
	}
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	if _, err := b.kube.CoreV1().Namespaces().Create(ctx, nsObj, metav1.CreateOptions{}); err != nil {
		return b, err
	}
	for _, r := range o.replicas {
		w, err := startWebhook(ctx, cl, binDir, r)
		if err != nil {
			return b, err
		}
		b.hooks = append(b.hooks, w)
		b.stops = append(b.stops, func() { _ = w.Stop() })
	}
	if err := b.installPolicy(ctx); err != nil {
		return b, err
	}
	if b.ipBase, err = b.ipAddresses(ctx); err != nil {
		return b, err
	}
	_, _ = fmt.Fprintf(out, "lab API server and mesh-webhook %v ready in %s; %d rounds of %d timed creates per case, concurrency %d, %d warm-up\n",
		o.replicas, time.Since(start).Round(100*time.Millisecond), o.rounds, o.n, o.conc, o.warm)
	return b, nil
}

// close stops what setup started, last first.
func (b *bench) close() {
	for i := len(b.stops) - 1; i >= 0; i-- {
		b.stops[i]()
	}
}

// cases are a, b, one c per replica count, and d, in that order.
func (b *bench) cases() []benchCase {
	cs := []benchCase{
		{name: "a", label: "ServiceEntry, no admission"},
		{name: "b", label: "ServiceEntry, policy only", adm: admission{policy: true}},
	}
	for i, r := range b.o.replicas {
		cs = append(cs, benchCase{
			name:  fmt.Sprintf("c%d", r),
			label: fmt.Sprintf("ServiceEntry, mesh-webhook ×%d + policy", r),
			adm:   admission{policy: true, hook: b.hooks[i]},
		})
	}
	return append(cs, benchCase{name: "d", label: "Service (ClusterIP)", services: true})
}

// runCase switches admission to the case's, warms up, and times o.n
// creates, in batches that fit between two clears; it leaves nothing
// behind.
func (b *bench) runCase(ctx context.Context, c benchCase, round int) ([]time.Duration, error) {
	if err := b.setAdmission(ctx, c.adm); err != nil {
		return nil, err
	}
	w := b.entries()
	if c.services {
		w = b.services()
	}
	step := b.o.n
	if w.batch > 0 {
		step = min(step, w.batch)
	}
	prefix := fmt.Sprintf("%s-r%d", c.name, round)
	if b.o.warm > 0 {
		if _, err := creates(ctx, w.create, prefix+"-w", 0, min(b.o.warm, step), b.o.conc); err != nil {
			return nil, err
		}
		if err := w.clear(ctx); err != nil {
			return nil, err
		}
	}
	var lat []time.Duration
	for from := 0; from < b.o.n; from += step {
		l, err := creates(ctx, w.create, prefix, from, min(step, b.o.n-from), b.o.conc)
		if err != nil {
			return nil, err
		}
		lat = append(lat, l...)
		if err := w.clear(ctx); err != nil {
			return nil, err
		}
	}
	return lat, nil
}

// creates calls create for the names prefix-from … prefix-(from+n-1) at
// concurrency conc and returns each call's latency.
func creates(ctx context.Context, create func(context.Context, string) error, prefix string, from, n, conc int) ([]time.Duration, error) {
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for i := range next {
				name := fmt.Sprintf("%s-%d", prefix, from+i)
				start := time.Now()
				errs[i] = create(ctx, name)
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
			return nil, fmt.Errorf("create %s-%d: %w", prefix, from+i, err)
		}
	}
	return lat, nil
}

// poll calls done every 100ms until it reports true, fails, or timeout
// passes; what names the awaited condition.
func poll(ctx context.Context, timeout time.Duration, what string, done func() (bool, string, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, why, err := done()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %s: %s", what, timeout, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
