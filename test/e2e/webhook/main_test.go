// Package webhook checks mesh-webhook end to end: real API servers of the
// lab, mesh-webhook processes with real TLS registered through the webhook
// configurations of deploy/webhook, and the real kubectl.
package webhook

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

var (
	theLab *lab.Lab
	// binDir holds the mesh-webhook binary built for this run.
	binDir string
	// deny: cluster1, three replicas behind the round-robin proxy, deny mode.
	deny *lab.Webhook
	// warn: cluster2, one replica in warn mode, installed after brownfield
	// entries were created.
	warn *lab.Webhook
)

// Fast repair so that orphan removal is observable within a test.
var repairArgs = []string{"--repair-interval=1s", "--repair-grace=2s"}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("skipping end-to-end tests in -short mode")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var err error
	binDir, err = os.MkdirTemp("", "kubectl-mesh-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(binDir)
	if err := lab.BuildWebhook(binDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	l, err := lab.Start(ctx, lab.Options{Clusters: []string{"cluster1", "cluster2"}, Log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	l.PathPrepend = binDir
	theLab = l
	defer func() {
		for _, w := range []*lab.Webhook{deny, warn} {
			if w != nil {
				_ = w.Stop()
			}
		}
		if err := l.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	if deny, err = l.Cluster("cluster1").InstallWebhook(ctx, lab.WebhookOptions{Replicas: 3, BinDir: binDir, Args: repairArgs, Log: os.Stderr}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := createBrownfield(ctx, l.Cluster("cluster2")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if warn, err = l.Cluster("cluster2").InstallWebhook(ctx, lab.WebhookOptions{BinDir: binDir, Args: append([]string{"--mode=warn"}, repairArgs...), Log: os.Stderr}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// Brownfield entries exist before the webhook: one to adopt, two that
// share a VIP.
var brownfield = map[string]string{"brown-a": "240.3.0.1", "brown-dup-1": "240.3.0.2", "brown-dup-2": "240.3.0.2"}

func createBrownfield(ctx context.Context, c *lab.Cluster) error {
	for name, addr := range brownfield {
		o := entry("foo", name, "brown-"+name[len(name)-1:]+".bar.global", addr)
		if _, err := c.Dynamic.Resource(rules.ServiceEntryGVR).Namespace("foo").Create(ctx, o, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("brownfield %s: %w", name, err)
		}
	}
	return nil
}

// entry is a complete, valid .global ServiceEntry; addr "" leaves
// addresses (and the defaulted fields) out.
func entry(ns, name, host, addr string) *unstructured.Unstructured {
	spec := map[string]any{
		"hosts":     []any{host},
		"ports":     []any{map[string]any{"name": "http", "number": int64(8000), "protocol": "HTTP"}},
		"endpoints": []any{map[string]any{"address": "203.0.113.7", "labels": map[string]any{"cluster": "cluster2"}}},
	}
	if addr != "" {
		spec["addresses"] = []any{addr}
		spec["location"] = "MESH_INTERNAL"
		spec["resolution"] = "DNS"
		spec["endpoints"].([]any)[0].(map[string]any)["ports"] = map[string]any{"http": int64(15443)}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "ServiceEntry",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec":       spec,
	}}
}
