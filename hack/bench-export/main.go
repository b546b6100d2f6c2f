// Command bench-export measures `kubectl mesh export` against the by-hand
// way on a lab: N Services of one source cluster exported into three target
// clusters in one run, versus the same objects applied with one
// `kubectl apply` per object. It prints both durations, their ratio and the
// API requests export makes per Service and cluster (counted by wrapping
// the client transport), for a first run and an unchanged re-run.
//
//	go run ./hack/bench-export -services 100
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/plugin"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

const (
	source    = "cluster2"
	namespace = "bench"
	handNS    = "bench-hand"
)

var targets = []string{"cluster1", "cluster3", "cluster4"}

const claimsTarget = "cluster4"

func installClaimCRD(c *lab.Cluster) error {
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(vip.CRDYAML(), &crd); err != nil {
		return err
	}
	_, err := envtest.InstallCRDs(c.Config, envtest.CRDInstallOptions{CRDs: []*apiextensionsv1.CustomResourceDefinition{&crd}})
	return err
}

func main() {
	services := flag.Int("services", 100, "Services to export")
	flag.Parse()
	if err := run(*services); err != nil {
		fmt.Fprintln(os.Stderr, "bench-export:", err)
		os.Exit(1)
	}
}

// counter counts the API requests sent to each API server.
type counter struct {
	mu     sync.Mutex
	byHost map[string]*atomic.Int64
}

func (c *counter) wrap(cfg *rest.Config) {
	c.mu.Lock()
	n, ok := c.byHost[cfg.Host]
	if !ok {
		n = &atomic.Int64{}
		c.byHost[cfg.Host] = n
	}
	c.mu.Unlock()
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			n.Add(1)
			return rt.RoundTrip(r)
		})
	})
}

func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.byHost {
		n.Store(0)
	}
}

func (c *counter) get(host string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.byHost[host]; ok {
		return n.Load()
	}
	return 0
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func run(n int) error {
	ctx := context.Background()
	fmt.Fprintf(os.Stderr, "starting a lab of 4 clusters...\n")
	l, err := lab.Start(ctx, lab.Options{Clusters: []string{"cluster1", "cluster2", "cluster3", "cluster4"}, Log: os.Stderr})
	if err != nil {
		return err
	}
	defer func() { _ = l.Stop() }()
	if err := seed(ctx, l, n); err != nil {
		return err
	}
	// cluster4 serves VIPClaims (as with mesh-webhook installed), so export
	// claims every VIP there; the other targets use the best-effort check.
	if err := installClaimCRD(l.Cluster(claimsTarget)); err != nil {
		return err
	}

	cnt := &counter{byHost: map[string]*atomic.Int64{}}
	export := func() (time.Duration, error) {
		cf := genericclioptions.NewConfigFlags(false)
		cf.KubeConfig = &l.Kubeconfig
		ns := namespace
		cf.Namespace = &ns
		var out bytes.Buffer
		f := cli.NewFactory(cf)
		f.WrapConfig = cnt.wrap
		o := plugin.NewExportOptions(f, genericiooptions.IOStreams{In: nil, Out: &out, ErrOut: io.Discard})
		o.All, o.From, o.To = true, source, targets
		start := time.Now()
		if err := o.Complete(nil, nil); err != nil {
			return 0, err
		}
		if err := o.Validate(); err != nil {
			return 0, err
		}
		err := o.Run(ctx)
		return time.Since(start), err
	}

	first, err := export()
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	perTarget := map[string]int64{}
	for _, t := range targets {
		perTarget[t] = cnt.get(l.Cluster(t).Config.Host)
	}
	srcReqs := cnt.get(l.Cluster(source).Config.Host)
	cnt.reset()
	rerun, err := export()
	if err != nil {
		return fmt.Errorf("export re-run: %w", err)
	}
	rerunTarget := map[string]int64{}
	for _, t := range targets {
		rerunTarget[t] = cnt.get(l.Cluster(t).Config.Host)
	}
	rerunSrc := cnt.get(l.Cluster(source).Config.Host)

	objs, err := collect(ctx, l)
	if err != nil {
		return err
	}
	hand, err := byHand(ctx, l, objs)
	if err != nil {
		return err
	}

	fmt.Printf("services: %d, source: %s, targets: %s (%d objects: %d per target cluster + %d in the source)\n",
		n, source, strings.Join(targets, ","), countObjs(objs), 2*n, n)
	fmt.Printf("kubectl mesh export (one run):        %8.2fs\n", first.Seconds())
	fmt.Printf("kubectl apply, one per object:        %8.2fs\n", hand.Seconds())
	fmt.Printf("ratio (by hand / export):             %8.1fx\n", hand.Seconds()/first.Seconds())
	fmt.Printf("kubectl mesh export re-run (unchanged): %6.2fs\n", rerun.Seconds())
	for _, t := range targets {
		mode := "best-effort VIP check"
		if t == claimsTarget {
			mode = "VIPClaims"
		}
		fmt.Printf("API requests per service, %s (target, %s): first run %.2f, re-run %.2f\n", t, mode, float64(perTarget[t])/float64(n), float64(rerunTarget[t])/float64(n))
	}
	fmt.Printf("API requests per service, %s (source): first run %.2f, re-run %.2f\n", source, float64(srcReqs)/float64(n), float64(rerunSrc)/float64(n))
	return nil
}

// seed creates n Services with two versions each (one Pod per version) in
// the source, and the namespaces in the targets.
func seed(ctx context.Context, l *lab.Lab, n int) error {
	for _, c := range l.Clusters {
		for _, ns := range []string{namespace, handNS} {
			if _, err := c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				return err
			}
		}
	}
	kube := l.Cluster(source).Kube
	for i := range n {
		name := fmt.Sprintf("svc-%03d", i)
		_, err := kube.CoreV1().Services(namespace).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": name},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromInt32(8080)}},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		for _, v := range []string{"v1", "v2"} {
			_, err := kube.CoreV1().Pods(namespace).Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name + "-" + v, Labels: map[string]string{"app": name, "version": v}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:" + v}}},
			}, metav1.CreateOptions{})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// collect reads back what export wrote, per cluster, as apply-ready YAML
// for the by-hand namespace.
func collect(ctx context.Context, l *lab.Lab) (map[string][][]byte, error) {
	out := map[string][][]byte{}
	for _, c := range append(slices.Clone(targets), source) {
		for _, gvr := range []struct {
			g    string
			list func() (*unstructured.UnstructuredList, error)
		}{
			{"se", func() (*unstructured.UnstructuredList, error) {
				return l.Cluster(c).Dynamic.Resource(rules.ServiceEntryGVR).Namespace(namespace).List(ctx, metav1.ListOptions{})
			}},
			{"dr", func() (*unstructured.UnstructuredList, error) {
				return l.Cluster(c).Dynamic.Resource(rules.DestinationRuleGVR).Namespace(namespace).List(ctx, metav1.ListOptions{})
			}},
		} {
			list, err := gvr.list()
			if err != nil {
				return nil, err
			}
			for _, it := range list.Items {
				obj := map[string]any{
					"apiVersion": it.GetAPIVersion(), "kind": it.GetKind(),
					"metadata": map[string]any{"name": it.GetName(), "namespace": handNS, "labels": it.GetLabels(), "annotations": it.GetAnnotations()},
					"spec":     it.Object["spec"],
				}
				b, err := yaml.Marshal(obj)
				if err != nil {
					return nil, err
				}
				out[c] = append(out[c], b)
			}
		}
	}
	return out, nil
}

func countObjs(objs map[string][][]byte) int {
	n := 0
	for _, o := range objs {
		n += len(o)
	}
	return n
}

// byHand applies every object with its own `kubectl apply`, cluster after
// cluster, as a person following a guide would.
func byHand(ctx context.Context, l *lab.Lab, objs map[string][][]byte) (time.Duration, error) {
	kubectl, err := lab.Binary("kubectl")
	if err != nil {
		return 0, err
	}
	env, err := l.Env()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for _, c := range append(slices.Clone(targets), source) {
		for _, b := range objs[c] {
			cmd := exec.CommandContext(ctx, kubectl, "--context", c, "apply", "-f", "-")
			cmd.Env = env
			cmd.Stdin = bytes.NewReader(b)
			if out, err := cmd.CombinedOutput(); err != nil {
				return 0, fmt.Errorf("kubectl apply in %s: %w: %s", c, err, out)
			}
		}
	}
	return time.Since(start), nil
}
