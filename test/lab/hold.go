package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// HoldOptions choose the create a Hold holds.
type HoldOptions struct {
	// Resource and Namespace select the creates sent to the webhook; Name
	// is the one held, the others are admitted.
	Resource  schema.GroupVersionResource
	Namespace string
	Name      string
	// Probe is a valid object of Resource in Namespace, created as server
	// dry runs until the webhook answers them (it refuses dry runs).
	Probe *unstructured.Unstructured
}

// Hold is an admission webhook that holds the create of one object until
// Release, then refuses it: a deterministic slow cluster, to interrupt a
// command in the middle of its writes.
type Hold struct {
	// Arrived is closed when the held create reaches the webhook.
	Arrived chan struct{}
	name    string
	release chan struct{}
	once    sync.Once
	srv     *httptest.Server
	cluster *Cluster
	config  string
}

const holdProbeMessage = "probe let through"

// HoldCreate registers a Hold with the cluster's API server and waits until
// it is in effect. Stop removes it.
func (c *Cluster) HoldCreate(ctx context.Context, opts HoldOptions) (*Hold, error) {
	h := &Hold{Arrived: make(chan struct{}), name: opts.Name, release: make(chan struct{}), cluster: c,
		config: "lab-hold-" + opts.Resource.Resource + "-" + opts.Namespace + "-" + opts.Name}
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(h.serve))
	h.srv.StartTLS()
	cfg := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
		"metadata": map[string]any{"name": h.config},
		"webhooks": []any{map[string]any{
			"name":                    "hold.lab.kubectl-mesh.io",
			"admissionReviewVersions": []any{"v1"},
			"sideEffects":             "None",
			"failurePolicy":           "Fail",
			"timeoutSeconds":          int64(30),
			"clientConfig": map[string]any{"url": h.srv.URL + "/hold",
				"caBundle": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.srv.Certificate().Raw})},
			"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": opts.Namespace}},
			"rules": []any{map[string]any{
				"apiGroups": []any{opts.Resource.Group}, "apiVersions": []any{"*"},
				"operations": []any{"CREATE"}, "resources": []any{opts.Resource.Resource},
			}},
		}},
	}}
	if _, err := c.Dynamic.Resource(validatingGVR).Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		h.srv.Close()
		return nil, fmt.Errorf("lab: hold %s: %w", opts.Name, err)
	}
	// The configuration takes effect asynchronously.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, err := c.Dynamic.Resource(opts.Resource).Namespace(opts.Namespace).Create(ctx, opts.Probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), holdProbeMessage) {
			return h, nil
		}
		if time.Now().After(deadline) {
			h.Stop()
			return nil, fmt.Errorf("lab: the hold of %s never took effect (last answer: %v)", opts.Name, err)
		}
	}
}

func (h *Hold) serve(w http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	switch {
	case review.Request.DryRun != nil && *review.Request.DryRun:
		resp.Allowed, resp.Result = false, &metav1.Status{Code: http.StatusForbidden, Message: holdProbeMessage}
	case review.Request.Name == h.name:
		h.once.Do(func() { close(h.Arrived) })
		select {
		case <-h.release:
		case <-r.Context().Done():
		}
		resp.Allowed, resp.Result = false, &metav1.Status{Code: http.StatusForbidden, Message: "held by the lab, then refused"}
	}
	review.Response, review.Request = resp, nil
	_ = json.NewEncoder(w).Encode(&review)
}

// Release lets the held create go (refused).
func (h *Hold) Release() {
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

// Stop releases the create and removes the webhook.
func (h *Hold) Stop() {
	h.Release()
	_ = h.cluster.Dynamic.Resource(validatingGVR).Delete(context.Background(), h.config, metav1.DeleteOptions{})
	h.srv.Close()
}

// Process is the real kubectl run against the lab in the background, to be
// signalled while it works.
type Process struct {
	Cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	exited         chan error
}

// StartKubectl starts the lab's kubectl with args; `kubectl mesh` execs
// the plugin in kubectl's process, so a signal to it reaches the plugin.
func (l *Lab) StartKubectl(args ...string) (*Process, error) {
	kubectl, err := Binary("kubectl")
	if err != nil {
		return nil, err
	}
	env, err := l.Env()
	if err != nil {
		return nil, err
	}
	p := &Process{Cmd: exec.Command(kubectl, args...), exited: make(chan error, 1)}
	p.Cmd.Env = env
	p.Cmd.Stdout, p.Cmd.Stderr = &p.stdout, &p.stderr
	if err := p.Cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.exited <- p.Cmd.Wait() }()
	return p, nil
}

// AwaitHold waits until the held create reaches the webhook. It fails
// when the process ends first or after timeout (the process is then
// killed).
func (p *Process) AwaitHold(h *Hold, timeout time.Duration) error {
	select {
	case <-h.Arrived:
		return nil
	case err := <-p.exited:
		p.exited <- err
		return fmt.Errorf("lab: %s ended (%v) before the create of %s reached the hold:\n%s", strings.Join(p.Cmd.Args, " "), err, h.name, p.Output())
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("lab: the create of %s never reached the hold within %s", h.name, timeout)
	}
}

// Interrupt sends SIGINT and waits until the process ends, killing it after
// timeout; it returns how it ended.
func (p *Process) Interrupt(timeout time.Duration) error {
	if err := p.Cmd.Process.Signal(os.Interrupt); err != nil {
		return err
	}
	select {
	case err := <-p.exited:
		return err
	case <-time.After(timeout):
		_ = p.Cmd.Process.Kill()
		return fmt.Errorf("lab: %s did not end within %s of SIGINT", strings.Join(p.Cmd.Args, " "), timeout)
	}
}

// Kill ends the process.
func (p *Process) Kill() { _ = p.Cmd.Process.Kill() }

// Output is what the process printed, stdout then stderr; read it after it
// ended.
func (p *Process) Output() string { return p.stdout.String() + p.stderr.String() }
