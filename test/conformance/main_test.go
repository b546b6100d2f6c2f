// Package conformance is the product's acceptance test, judged by Istio's own
// pilot: it starts the project's lab (one API server per cluster, with a
// real mesh-webhook), runs `kubectl mesh` exactly as a user would — through
// the real kubectl's plugin discovery —, reads back what the product wrote,
// and hands it to one in-process pilot per cluster (pilot/test/xds). Every
// exported (host, port, subset) is then followed from the caller's sidecar
// to the source gateway's filter chain and the pods it lands on.
//
// It is its own Go module so that it can depend on istio.io/istio without
// putting Istio into the product's dependencies; for the same reason it
// never imports the product: it drives the product's binaries and reads
// the lab's API servers like any other client.
package conformance

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"istio.io/istio/pkg/log"
)

// The lab's clusters. cluster1 calls; cluster2, cluster4 and cluster5
// export, each from its own region (the lab's nodes carry
// topology.kubernetes.io/region=region-<cluster>), so that a failover rule
// has three regions to order. cluster3 has no load balancer (NodePort
// gateway), which the lab's webhook does not allow as an endpoint port yet,
// so it stays a bystander: its pilot is built and must not be where any
// route lands.
var labClusters = []string{"cluster1", "cluster2", "cluster3", "cluster4", "cluster5"}

const callerCluster = "cluster1"

// The programs `make test-deps` puts in <repo>/bin.
var requiredBinaries = []string{"kubectl-mesh", "mesh-webhook", "kubectl", "kube-apiserver", "etcd"}

// TestMain owns the lab's lifetime: the lab is started lazily by the first
// test that needs it (so that `go test -run TestPilotFacts` needs none) and
// always stopped here, then the exit code is passed on.
func TestMain(m *testing.M) {
	// Istio logs hundreds of info lines per fake server; set
	// CONFORMANCE_PILOT_LOGS=1 to see them.
	if os.Getenv("CONFORMANCE_PILOT_LOGS") == "" {
		o := log.DefaultOptions()
		o.SetDefaultOutputLevel(log.OverrideScopeName, log.NoneLevel)
		if err := log.Configure(o); err != nil {
			fmt.Fprintln(os.Stderr, "conformance: silence istio logs:", err)
			os.Exit(1)
		}
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	defer theLab.stop()
	return m.Run()
}

// lab is the lab this test process started.
type lab struct {
	root       string // repository whose bin/ and hack/lab are used
	dir        string // temporary directory: lab data, kubeconfig, certificates
	kubeconfig string
	started    bool
}

var (
	theLab      lab
	setupOnce   sync.Once
	theScenario *scenario
	setupErr    error
)

// scenario is what the product wrote, read back from every lab cluster.
type scenario struct {
	// clusters are every cluster after the whole session (the last
	// command being the locality --distribute).
	clusters map[string]*clusterObjects
	// afterFailover is the caller's cluster as the --failover command
	// left it, before --distribute replaced the policy.
	afterFailover *clusterObjects
	took          map[string]time.Duration
}

// needScenario starts the lab, runs the product and reads the clusters back,
// once per test process.
func needScenario(t *testing.T) *scenario {
	t.Helper()
	// Like every lab test of the repository (test/lab.RunTests).
	if testing.Short() {
		t.Skip("starts a lab: skipped in -short mode")
	}
	setupOnce.Do(func() { theScenario, setupErr = setup() })
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	return theScenario
}

func setup() (*scenario, error) {
	sc := &scenario{took: map[string]time.Duration{}}
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	theLab.root = root
	var missing []string
	for _, b := range requiredBinaries {
		if _, err := os.Stat(filepath.Join(root, "bin", b)); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s/bin lacks %s; run `make test-deps` in %s first", root, strings.Join(missing, ", "), root)
	}
	if theLab.dir, err = os.MkdirTemp("", "kubectl-mesh-conformance-"); err != nil {
		return nil, err
	}
	labDir := filepath.Join(theLab.dir, "lab")
	theLab.kubeconfig = filepath.Join(labDir, "kubeconfig")

	start := time.Now()
	theLab.started = true
	if err := theLab.reapAfterExit(); err != nil {
		return nil, err
	}
	if out, err := theLab.goRun(theLab.upPIDFile(), "./hack/lab", "up", "-dir", labDir, "-clusters", strings.Join(labClusters, ",")); err != nil {
		return nil, fmt.Errorf("lab up: %w\n%s", err, out)
	}
	sc.took["lab up"] = time.Since(start)

	clients, err := labClients(theLab.kubeconfig, labClusters)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for name, version := range map[string]string{"cluster4": "v5", "cluster5": "v6"} {
		if err := furnishHelloworld(ctx, clients[name].kube, version); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	readBack := func(name string) (*clusterObjects, error) {
		start := time.Now()
		defer func() { sc.took["read back"] += time.Since(start) }()
		c, err := readCluster(ctx, clients[name], name)
		if err != nil {
			return nil, fmt.Errorf("%s: read back: %w", name, err)
		}
		return c.withKubeletAndInjector(slices.Index(labClusters, name)), nil
	}

	start = time.Now()
	if err := runProduct(filepath.Join(theLab.dir, "certs")); err != nil {
		return nil, err
	}
	if err := theLab.kubectlMesh(failoverArgs...); err != nil {
		return nil, err
	}
	sc.took["kubectl mesh"] = time.Since(start)
	if sc.afterFailover, err = readBack(callerCluster); err != nil {
		return nil, err
	}
	start = time.Now()
	if err := theLab.kubectlMesh(distributeArgs...); err != nil {
		return nil, err
	}
	sc.took["kubectl mesh"] += time.Since(start)

	sc.clusters = map[string]*clusterObjects{}
	for _, name := range labClusters {
		if sc.clusters[name], err = readBack(name); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

// repoRoot is CONFORMANCE_REPO (e.g. a worktree of an older product), else
// the repository this module lives in.
func repoRoot() (string, error) {
	root := os.Getenv("CONFORMANCE_REPO")
	if root == "" {
		root = filepath.Join("..", "..")
	}
	return filepath.Abs(root)
}

// The session's locality commands, run after runProduct: a failover from
// cluster2's region to cluster5's (cluster4's region is then the last
// resort), then a weighted distribution that replaces it. Each is read
// back (scenario.afterFailover, scenario.clusters).
var (
	failoverArgs   = []string{"route", "helloworld", "-n", "hello", "--contexts", callerCluster, "--failover", "region-cluster2=region-cluster5"}
	distributeArgs = []string{"route", "helloworld", "-n", "hello", "--contexts", callerCluster, "--distribute", "region-cluster2/*=region-cluster2/*:80,region-cluster4/*:10,region-cluster5/*:10"}
)

// runProduct is the user's session: a shared root CA, an intermediate per
// cluster, three links, four exports (httpbin into another namespace,
// helloworld from three source clusters) and the seed's version routing
// (jason 70/30 to the remote v2/v3, everyone else to the local v1).
func runProduct(certs string) error {
	for _, args := range [][]string{
		{"certs", "root", "--dir", certs, "--key-algorithm", "ecdsa"},
		{"certs", "intermediate", "cluster1", "cluster2", "cluster4", "cluster5", "--dir", certs},
		{"certs", "install", "--dir", certs, "--contexts", "cluster1,cluster2,cluster4,cluster5"},
		{"link", "--from", "cluster1", "--to", "cluster2"},
		{"link", "--from", "cluster1", "--to", "cluster4"},
		{"link", "--from", "cluster1", "--to", "cluster5"},
		{"export", "httpbin", "-n", "bar", "--from", "cluster2", "--to", "cluster1", "--target-namespace", "foo"},
		{"export", "helloworld", "-n", "hello", "--from", "cluster2", "--to", "cluster1"},
		{"export", "helloworld", "-n", "hello", "--from", "cluster4", "--to", "cluster1"},
		{"export", "helloworld", "-n", "hello", "--from", "cluster5", "--to", "cluster1"},
		seedRouteArgs,
	} {
		if err := theLab.kubectlMesh(args...); err != nil {
			return err
		}
	}
	return nil
}

// kubectlMesh runs `kubectl mesh ARGS` through the real kubectl, which finds
// the plugin on PATH as a user's kubectl would.
func (l *lab) kubectlMesh(args ...string) error {
	cmd := exec.Command(filepath.Join(l.root, "bin", "kubectl"), append([]string{"mesh"}, args...)...)
	cmd.Dir = l.dir
	cmd.Env = append(environWithout("KUBECONFIG", "PATH"),
		"KUBECONFIG="+l.kubeconfig,
		"PATH="+filepath.Join(l.root, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl mesh %s: %w\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return nil
}

// goRun runs a command of the repository with `go run`, from its root, and
// writes its PID to pidFile unless that is "".
func (l *lab) goRun(pidFile, pkg string, args ...string) (string, error) {
	cmd := exec.Command("go", append([]string{"run", pkg}, args...)...)
	cmd.Dir = l.root
	cmd.Env = goEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	if pidFile != "" {
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return "", err
		}
	}
	err := cmd.Wait()
	return out.String(), err
}

// upPIDFile records the PID of `lab up` while it runs, for the reaper.
func (l *lab) upPIDFile() string { return filepath.Join(l.dir, "lab-up.pid") }

// goEnv is the environment of the Makefile's go commands: the local
// toolchain, and k8s.io modules the checksum database does not know.
func goEnv() []string {
	env := os.Environ()
	for _, kv := range []string{"GOTOOLCHAIN=local", "GONOSUMDB=k8s.io"} {
		if k, _, _ := strings.Cut(kv, "="); os.Getenv(k) == "" {
			env = append(env, kv)
		}
	}
	return env
}

func environWithout(keys ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, key := range keys {
			drop = drop || k == key
		}
		if !drop {
			env = append(env, kv)
		}
	}
	return env
}

// stop takes the lab down and removes its directory.
func (l *lab) stop() {
	if !l.started {
		return
	}
	if out, err := l.goRun("", "./hack/lab", "down", "-dir", filepath.Join(l.dir, "lab")); err != nil {
		fmt.Fprintf(os.Stderr, "conformance: lab down: %v\n%s", err, out)
		return
	}
	_ = os.RemoveAll(l.dir)
}

// reapAfterExit starts a watcher that takes the lab down if this process
// dies without doing it: the lab's API servers are detached (they outlive
// `lab up` by design), and a panic in a test goroutine or `go test
// -timeout` ends the process without running TestMain's deferred stop. The
// watcher waits for this process to end, then for a `lab up` still running
// (it would leave the lab up after we are gone), then runs `lab down` if
// the lab is still up (state.json). It runs in its own process group so
// that a Ctrl-C reaches it only after this process is gone, and it ends by
// itself.
func (l *lab) reapAfterExit() error {
	script := `while kill -0 "$1" 2>/dev/null; do sleep 1; done
if [ -e "$3" ]; then while kill -0 "$(cat "$3")" 2>/dev/null; do sleep 1; done; fi
if [ -e "$2/state.json" ]; then go run ./hack/lab down -dir "$2" >/dev/null 2>&1; fi
rm -rf "$4"`
	cmd := exec.Command("sh", "-c", script, "reaper", strconv.Itoa(os.Getpid()), filepath.Join(l.dir, "lab"), l.upPIDFile(), l.dir)
	cmd.Dir = l.root
	cmd.Env = goEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the lab's reaper: %w", err)
	}
	// Reap it if it ends while we still run; its exit status is of no use.
	go func() { _ = cmd.Wait() }()
	return nil
}

// furnishHelloworld is test furniture: the lab gives cluster4 (the first
// profile again, LoadBalancer IP 192.0.2.13) and cluster5 (the second
// profile again, LoadBalancer host name gw-5.elb.example.com) no apps, so
// this test adds a helloworld version to each (v5, v6), making
// helloworld.hello.global a service of three source clusters in three
// regions.
func furnishHelloworld(ctx context.Context, kube kubernetes.Interface, version string) error {
	const ns, name = "hello", "helloworld"
	labels := map[string]string{"app": name}
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := kube.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name, "service": name}},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 5000, TargetPort: intstr.FromInt32(5000), Protocol: corev1.ProtocolTCP}},
		},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	_, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-" + version, Namespace: ns, Labels: map[string]string{"app": name, "version": version}},
		Spec: corev1.PodSpec{
			ServiceAccountName: name,
			Containers:         []corev1.Container{{Name: name, Image: "docker.io/istio/examples-helloworld-" + version + ":1.0"}},
		},
	}, metav1.CreateOptions{})
	return err
}
