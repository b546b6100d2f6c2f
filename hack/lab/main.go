// Command lab starts and stops the detached local lab behind `make lab-up`
// and `make lab-down`: one etcd and kube-apiserver per cluster, whose
// processes outlive this command and are stopped by the PIDs it records.
//
//	go run ./hack/lab up   [-dir .lab] [-clusters cluster1,cluster2,cluster3,east,west] [-current-istio east,west]
//	go run ./hack/lab down [-dir .lab]
//	go run ./hack/lab status [-dir .lab]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

// state is what `up` records for `down` and `status`.
type state struct {
	Clusters   []clusterState `json:"clusters"`
	Kubeconfig string         `json:"kubeconfig"`
	Started    time.Time      `json:"started"`
}

type clusterState struct {
	Name   string `json:"name"`
	Server string `json:"server"`
	Dir    string `json:"dir"`
	PIDs   []int  `json:"pids"`
	// WebhookPIDs are the mesh-webhook processes serving the cluster's
	// admission webhooks; WebhookURL is where its configurations call.
	WebhookPIDs []int  `json:"webhookPids,omitempty"`
	WebhookURL  string `json:"webhookURL,omitempty"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: lab up|down|status [-dir DIR] [-clusters a,b,c]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", ".lab", "lab directory (kubeconfig, state, cluster data)")
	clusters := fs.String("clusters", strings.Join(append(slices.Clone(lab.DefaultClusters), defaultCurrentIstio...), ","), "comma-separated cluster names")
	current := fs.String("current-istio", strings.Join(defaultCurrentIstio, ","), "comma-separated clusters (of -clusters) with the furniture of a current Istio multi-network install")
	_ = fs.Parse(os.Args[2:])
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fail(err)
	}
	switch os.Args[1] {
	case "up":
		err = up(abs, strings.Split(*clusters, ","), strings.Split(*current, ","), os.Stdout)
	case "down":
		err = down(abs, os.Stdout)
	case "status":
		err = status(abs, os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q; use up, down or status", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "lab:", err)
	os.Exit(1)
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

func readState(dir string) (*state, error) {
	b, err := os.ReadFile(statePath(dir))
	if err != nil {
		return nil, err
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", statePath(dir), err)
	}
	return &s, nil
}

// defaultCurrentIstio are the lab's current-Istio clusters, on which the
// demo follows Istio's multi-primary, multi-network guide.
var defaultCurrentIstio = []string{"east", "west"}

func up(dir string, names, currentIstio []string, out io.Writer) error {
	if s, err := readState(dir); err == nil {
		if healthy(s) && slices.Equal(clusterNames(s), names) {
			_, _ = fmt.Fprintf(out, "lab: already up (%s); KUBECONFIG=%s\n", strings.Join(names, ", "), s.Kubeconfig)
			return nil
		}
		_, _ = fmt.Fprintln(out, "lab: previous lab is not healthy; restarting it")
		if err := down(dir, out); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.Options{Clusters: names, CurrentIstio: currentIstio, Dir: dir, Log: out})
	if err != nil {
		// Start stopped what it started; make sure no data is left behind.
		for _, n := range names {
			_ = os.RemoveAll(filepath.Join(dir, n))
		}
		return err
	}
	s := &state{Kubeconfig: l.Kubeconfig, Started: time.Now().UTC()}
	for _, c := range l.Clusters {
		pids, err := pidsUsing(c.Dir)
		if err != nil {
			return err
		}
		s.Clusters = append(s.Clusters, clusterState{Name: c.Name, Server: c.Config.Host, Dir: c.Dir, PIDs: pids})
	}
	if err := startWebhooks(ctx, l, s, out); err != nil {
		// Record what runs so that `down` can stop it.
		_ = writeState(dir, s)
		return err
	}
	if err := writeState(dir, s); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(out, "lab: up; use it with\n  export KUBECONFIG=%s\n", l.Kubeconfig)
	// Return without stopping: the processes run in their own process
	// groups and stay up until `lab down`.
	return nil
}

func writeState(dir string, s *state) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(statePath(dir), b, 0o600)
}

// startWebhooks starts one detached mesh-webhook (bin/mesh-webhook, built by
// `make build`) per cluster and registers it, so that every kubectl apply
// of a .global ServiceEntry on the lab goes through the real webhook.
func startWebhooks(ctx context.Context, l *lab.Lab, s *state, out io.Writer) error {
	if _, err := lab.Binary("mesh-webhook"); err != nil {
		_, _ = fmt.Fprintln(out, "lab: no bin/mesh-webhook; clusters run without the admission webhook (run make build)")
		return nil
	}
	for i, c := range l.Clusters {
		w, err := c.InstallWebhook(ctx, lab.WebhookOptions{Detach: true, Log: out})
		if err != nil {
			return err
		}
		for _, p := range w.Replicas {
			s.Clusters[i].WebhookPIDs = append(s.Clusters[i].WebhookPIDs, p.PID)
		}
		s.Clusters[i].WebhookURL = w.URL
	}
	return nil
}

func clusterNames(s *state) []string {
	names := make([]string, len(s.Clusters))
	for i, c := range s.Clusters {
		names[i] = c.Name
	}
	return names
}

// pidsUsing finds the processes started for a cluster: those whose command
// line names the cluster's directory (etcd's --data-dir, the API server's
// --cert-dir).
func pidsUsing(dir string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, arg := range strings.Split(string(b), "\x00") {
			if strings.HasSuffix(arg, "="+filepath.Join(dir, "etcd")) || strings.HasSuffix(arg, "="+filepath.Join(dir, "pki")) || arg == filepath.Join(dir, "etcd") || arg == filepath.Join(dir, "pki") {
				pids = append(pids, pid)
				break
			}
		}
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("no process found for %s", dir)
	}
	return pids, nil
}

func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	// A zombie is not alive.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func healthy(s *state) bool {
	for _, c := range s.Clusters {
		for _, pid := range slices.Concat(c.PIDs, c.WebhookPIDs) {
			if !alive(pid) {
				return false
			}
		}
	}
	cfg, err := clientcmd.LoadFromFile(s.Kubeconfig)
	if err != nil {
		return false
	}
	for _, c := range s.Clusters {
		rc, err := clientcmd.NewNonInteractiveClientConfig(*cfg, c.Name, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
		if err != nil {
			return false
		}
		if !ready(rc) {
			return false
		}
	}
	return true
}

func ready(rc *rest.Config) bool {
	rc.Timeout = 5 * time.Second
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return false
	}
	resp, err := hc.Get(strings.TrimSuffix(rc.Host, "/") + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func down(dir string, out io.Writer) error {
	s, err := readState(dir)
	if errors.Is(err, os.ErrNotExist) {
		_, _ = fmt.Fprintln(out, "lab: not running")
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range s.Clusters {
		// The webhook first (it talks to the API server), then API servers,
		// then etcd: each gets SIGTERM, then SIGKILL.
		for _, pid := range c.WebhookPIDs {
			if err := stop(pid); err != nil {
				errs = append(errs, fmt.Errorf("%s: mesh-webhook pid %d: %w", c.Name, pid, err))
			}
		}
		for _, pid := range slices.Backward(c.PIDs) {
			if err := stop(pid); err != nil {
				errs = append(errs, fmt.Errorf("%s: pid %d: %w", c.Name, pid, err))
			}
		}
		if err := os.RemoveAll(c.Dir); err != nil {
			errs = append(errs, err)
		}
		_, _ = fmt.Fprintf(out, "lab: %s stopped (pids %v)\n", c.Name, c.PIDs)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	_ = os.Remove(s.Kubeconfig)
	return os.Remove(statePath(dir))
}

func stop(pid int) error {
	if !alive(pid) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	for range 100 {
		if !alive(pid) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	for range 50 {
		if !alive(pid) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("still running after SIGKILL")
}

func status(dir string, out io.Writer) error {
	s, err := readState(dir)
	if errors.Is(err, os.ErrNotExist) {
		_, _ = fmt.Fprintln(out, "lab: not running")
		return nil
	}
	if err != nil {
		return err
	}
	for _, c := range s.Clusters {
		st := "running"
		for _, pid := range slices.Concat(c.PIDs, c.WebhookPIDs) {
			if !alive(pid) {
				st = fmt.Sprintf("pid %d gone", pid)
			}
		}
		if c.WebhookURL != "" {
			st += ", mesh-webhook at " + c.WebhookURL
		}
		_, _ = fmt.Fprintf(out, "%-10s %-28s %s\n", c.Name, c.Server, st)
	}
	_, _ = fmt.Fprintf(out, "KUBECONFIG=%s\n", s.Kubeconfig)
	return nil
}
