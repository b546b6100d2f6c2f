package main

import (
	"context"
	"fmt"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

// Every use of the test/lab API is in this file.

// startLab starts one bare lab API server (the Istio CRDs, no furniture)
// and builds mesh-webhook into binDir.
func startLab(ctx context.Context, binDir string) (*lab.Lab, *lab.Cluster, error) {
	if err := lab.BuildWebhook(binDir); err != nil {
		return nil, nil, err
	}
	l, err := lab.Start(ctx, lab.Options{Clusters: []string{"bench"}, NoFurniture: true})
	if err != nil {
		return nil, nil, err
	}
	return l, l.Clusters[0], nil
}

// startWebhook starts replicas mesh-webhook processes (real TLS; with more
// than one, behind the lab's loopback round-robin proxy). InstallWebhook
// also registers the webhook configurations; setAdmission replaces or
// deletes them before anything is timed.
func startWebhook(ctx context.Context, cl *lab.Cluster, binDir string, replicas int) (*lab.Webhook, error) {
	// InstallWebhook keeps its CA and serving certificate under
	// Cluster.Dir: a second install in the same directory would replace the
	// certificate the first one's processes serve. Each replica count gets
	// a directory of its own.
	own := *cl
	own.Dir = filepath.Join(cl.Dir, fmt.Sprintf("bench-webhook-x%d", replicas))
	return own.InstallWebhook(ctx, lab.WebhookOptions{Replicas: replicas, BinDir: binDir, NoPolicy: true})
}

// manifests are the deployed webhook configurations pointing at w (nil: at
// nothing, for the policy alone), the ValidatingAdmissionPolicy and its
// binding, by kind.
func manifests(w *lab.Webhook) (map[string]*unstructured.Unstructured, error) {
	url, ca := "https://127.0.0.1:1", []byte(nil)
	if w != nil {
		url, ca = w.URL, w.CAPEM
	}
	objs, err := lab.WebhookConfigurations(url, ca, false)
	if err != nil {
		return nil, err
	}
	out := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		out[o.GetKind()] = o
	}
	for _, k := range []string{kindMutating, kindValidating, kindPolicy, kindBinding} {
		if out[k] == nil {
			return nil, fmt.Errorf("deploy/webhook has no %s", k)
		}
	}
	return out, nil
}

// admissionsOf is how many admission requests w's processes have answered
// for the webhook (mutate or validate).
func admissionsOf(ctx context.Context, w *lab.Webhook, webhook string) (float64, error) {
	return w.Metric(ctx, "mesh_webhook_admissions_total", map[string]string{"webhook": webhook})
}

// pids are w's process IDs.
func pids(w *lab.Webhook) []int {
	var out []int
	for _, p := range w.Replicas {
		out = append(out, p.PID)
	}
	return out
}
