package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

// Size of the oversized entry.
const oversizedPorts, oversizedEndpoints = 1000, 1000

// oversized registers w (and the policy), sends one dry-run create of a
// 1,000-port × 1,000-endpoint .global ServiceEntry whose endpoints have no
// ports (filling them in would make a million), and prints how long the
// answer took and the memory of w's processes before and after.
func (b *bench) oversized(ctx context.Context, w *lab.Webhook, out io.Writer) error {
	if err := b.setAdmission(ctx, admission{policy: true, hook: w}); err != nil {
		return err
	}
	o := oversizedEntry()
	body, err := json.Marshal(o.Object)
	if err != nil {
		return err
	}
	before, err := memory(pids(w))
	if err != nil {
		return err
	}
	start := time.Now()
	_, err = b.dryRun(ctx, o)
	took := time.Since(start)
	atAnswer, merr := memory(pids(w))
	if merr != nil {
		return merr
	}
	settled, merr := settle(ctx, pids(w))
	if merr != nil {
		return merr
	}
	_, _ = fmt.Fprintf(out, "oversized .global ServiceEntry: %d ports × %d endpoints without ports, %d KiB JSON; dry-run create with mesh-webhook ×%d and the policy\n",
		oversizedPorts, oversizedEndpoints, len(body)/1024, len(w.Replicas))
	if err == nil {
		_, _ = fmt.Fprintf(out, "  ADMITTED (not denied) after %.1f ms\n", ms(took))
	} else {
		msg := err.Error()
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		_, _ = fmt.Fprintf(out, "  denied after %.1f ms: HTTP %d %s: %s\n", ms(took), statusCode(err), apierrors.ReasonForError(err), msg)
	}
	for i, pid := range pids(w) {
		_, _ = fmt.Fprintf(out, "  pid %d  before %s | at the answer %s | settled %s\n", pid, before[i], atAnswer[i].growth(before[i]), settled[i].growth(before[i]))
	}
	return nil
}

func statusCode(err error) int32 {
	if s, ok := err.(apierrors.APIStatus); ok {
		return s.Status().Code
	}
	return 0
}

func oversizedEntry() *unstructured.Unstructured {
	o := entry("oversized")
	ports := make([]any, oversizedPorts)
	for i := range ports {
		ports[i] = map[string]any{"name": fmt.Sprintf("tcp-%d", i), "number": int64(10000 + i), "protocol": "TCP"}
	}
	eps := make([]any, oversizedEndpoints)
	for i := range eps {
		eps[i] = map[string]any{"address": fmt.Sprintf("198.18.%d.%d", i/250, i%250+1), "labels": map[string]any{"cluster": "c2"}}
	}
	spec := o.Object["spec"].(map[string]any)
	spec["ports"], spec["endpoints"] = ports, eps
	return o
}

// mem is a process's resident set and its peak, in KiB.
type mem struct{ rss, hwm int64 }

func mib(kib int64) float64 { return float64(kib) / 1024 }

func (m mem) String() string {
	return fmt.Sprintf("VmRSS %.1f MiB VmHWM %.1f MiB", mib(m.rss), mib(m.hwm))
}

func (m mem) growth(from mem) string {
	return fmt.Sprintf("VmRSS %.1f (%+.1f) VmHWM %.1f (%+.1f) MiB", mib(m.rss), mib(m.rss-from.rss), mib(m.hwm), mib(m.hwm-from.hwm))
}

// settle samples memory every 500ms until no process's VmHWM grew for two
// samples (a handler may outlive the API server's timeout), at most 30s.
func settle(ctx context.Context, pids []int) ([]mem, error) {
	last, err := memory(pids)
	stable := 0
	for deadline := time.Now().Add(30 * time.Second); err == nil && stable < 2 && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		var cur []mem
		if cur, err = memory(pids); err == nil {
			stable++
			for i := range cur {
				if cur[i].hwm > last[i].hwm {
					stable = 0
				}
			}
			last = cur
		}
	}
	return last, err
}

// memory reads VmRSS and VmHWM of every pid from /proc.
func memory(pids []int) ([]mem, error) {
	out := make([]mem, len(pids))
	for i, pid := range pids {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			switch {
			case ok && k == "VmRSS":
				out[i].rss = kib
			case ok && k == "VmHWM":
				out[i].hwm = kib
			}
		}
		_ = f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
