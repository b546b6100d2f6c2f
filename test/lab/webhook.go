package lab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/vip"
)

// WebhookNamespace is where mesh-webhook keeps its leader-election Lease.
const WebhookNamespace = rules.MeshNamespace

// WebhookOptions configure InstallWebhook.
type WebhookOptions struct {
	// Replicas is the number of mesh-webhook processes (default 1). With
	// more than one, a loopback round-robin TCP proxy plays the Service.
	Replicas int
	// BinDir holds the mesh-webhook binary (lab.BuildProduct's directory);
	// default BinDir().
	BinDir string
	// Args are extra mesh-webhook flags, e.g. --mode=warn or
	// --repair-grace=2s.
	Args []string
	// Detach starts the processes in their own process groups, to outlive
	// the caller (hack/lab up); they are stopped by PID. Needs Replicas 1:
	// the proxy lives in the caller.
	Detach bool
	// NoPolicy leaves the ValidatingAdmissionPolicy out.
	NoPolicy bool
	// SelfManagedTLS runs mesh-webhook with --tls-mode=self-managed: it
	// makes its own CA and serving certificate (for 127.0.0.1) and patches
	// caBundle into the configurations, which the lab registers without
	// one; the lab makes no certificates.
	SelfManagedTLS bool
	// Config is merged into the data of the mesh-webhook-config ConfigMap
	// (deploy/webhook/base/configmap.yaml) the lab applies, e.g.
	// {"allowedGatewayPorts": "15443,31443"}. The ValidatingAdmissionPolicy
	// reads it at every admission.
	Config map[string]string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Webhook is mesh-webhook running for one lab cluster.
type Webhook struct {
	Cluster  *Cluster
	Dir      string
	CertDir  string // tls.crt/tls.key served by every replica; replace them to rotate
	CAPEM    []byte // the lab CA the serving certificates chain to (caBundle)
	URL      string // https://127.0.0.1:port the webhook configurations call
	Replicas []*WebhookProcess

	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
	proxy *rrProxy
	log   io.Writer
}

// WebhookProcess is one mesh-webhook replica.
type WebhookProcess struct {
	Cmd         *exec.Cmd
	PID         int
	Port        int
	MetricsAddr string
	ProbeAddr   string
	LogPath     string
	exited      chan struct{}
}

// Webhook configuration objects generated from deploy/webhook/base.
var (
	mutatingGVR   = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations"}
	validatingGVR = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"}
	vapGVR        = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"}
	vapBindingGVR = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"}
	crdGVR        = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	namespaceGVR  = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	configMapGVR  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

// ReadManifests decodes every object of the YAML files under
// deploy/webhook/base named by files.
func ReadManifests(files ...string) ([]*unstructured.Unstructured, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, f := range files {
		p := filepath.Join(root, "deploy", "webhook", "base", f)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
		for {
			var m map[string]any
			if err := dec.Decode(&m); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("lab: %s: %w", p, err)
			}
			if len(m) > 0 {
				out = append(out, &unstructured.Unstructured{Object: m})
			}
		}
	}
	return out, nil
}

// WebhookConfigurations are the webhook configurations of deploy/webhook
// (and, unless noPolicy, its ValidatingAdmissionPolicy and binding) with
// every Service client config replaced by a URL client config on url (the
// Service's path kept) and caBundle set.
func WebhookConfigurations(url string, caBundle []byte, noPolicy bool) ([]*unstructured.Unstructured, error) {
	files := []string{"webhooks.yaml"}
	if !noPolicy {
		files = append(files, "policy.yaml")
	}
	objs, err := ReadManifests(files...)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		hooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
		for i, h := range hooks {
			hm := h.(map[string]any)
			cc, _ := hm["clientConfig"].(map[string]any)
			svc, _ := cc["service"].(map[string]any)
			path, _ := svc["path"].(string)
			hm["clientConfig"] = map[string]any{"url": strings.TrimSuffix(url, "/") + path, "caBundle": base64.StdEncoding.EncodeToString(caBundle)}
			hooks[i] = hm
		}
		if len(hooks) > 0 {
			if err := unstructured.SetNestedSlice(o.Object, hooks, "webhooks"); err != nil {
				return nil, err
			}
		}
	}
	return objs, nil
}

func gvrOf(o *unstructured.Unstructured) (schema.GroupVersionResource, error) {
	switch o.GetKind() {
	case "MutatingWebhookConfiguration":
		return mutatingGVR, nil
	case "ValidatingWebhookConfiguration":
		return validatingGVR, nil
	case "ValidatingAdmissionPolicy":
		return vapGVR, nil
	case "ValidatingAdmissionPolicyBinding":
		return vapBindingGVR, nil
	case "CustomResourceDefinition":
		return crdGVR, nil
	case "Namespace":
		return namespaceGVR, nil
	case "ConfigMap":
		return configMapGVR, nil
	}
	return schema.GroupVersionResource{}, fmt.Errorf("lab: no resource known for kind %s", o.GetKind())
}

// apply creates or replaces objects.
func (c *Cluster) apply(ctx context.Context, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		gvr, err := gvrOf(o)
		if err != nil {
			return err
		}
		var ri dynamic.ResourceInterface = c.Dynamic.Resource(gvr)
		if ns := o.GetNamespace(); ns != "" {
			ri = c.Dynamic.Resource(gvr).Namespace(ns)
		}
		_, err = ri.Create(ctx, o, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			cur, gerr := ri.Get(ctx, o.GetName(), metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			o.SetResourceVersion(cur.GetResourceVersion())
			_, err = ri.Update(ctx, o, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("lab: %s: apply %s %s: %w", c.Name, o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}

// InstallWebhook installs the VIPClaim CRD and the mesh-system namespace,
// starts mesh-webhook (real TLS from a CA the lab makes, loopback ports)
// and registers the webhook configurations of deploy/webhook pointing at it.
func (c *Cluster) InstallWebhook(ctx context.Context, opts WebhookOptions) (_ *Webhook, err error) {
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.Detach && opts.Replicas > 1 {
		return nil, errors.New("lab: a detached webhook runs one replica (the proxy would die with the caller)")
	}
	if opts.BinDir == "" {
		if opts.BinDir, err = BinDir(); err != nil {
			return nil, err
		}
	}
	bin := filepath.Join(opts.BinDir, "mesh-webhook")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("lab: %s not found; build it with lab.BuildProduct or `make build`", bin)
	}
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	w := &Webhook{Cluster: c, Dir: filepath.Join(c.Dir, "webhook"), log: logw}
	w.CertDir = filepath.Join(w.Dir, "certs")
	if err := os.MkdirAll(w.CertDir, 0o700); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = w.Stop()
		}
	}()

	base, err := ReadManifests("namespace.yaml", "vipclaims-crd.yaml")
	if err != nil {
		return nil, err
	}
	if err := c.apply(ctx, base); err != nil {
		return nil, err
	}
	// The lab's clients are cluster admins: no RBAC is applied, only what
	// the webhook and the policy read.
	if err := c.ApplyWebhookConfig(ctx, opts.Config); err != nil {
		return nil, err
	}
	if err := c.waitServed(ctx, vip.GVR); err != nil {
		return nil, err
	}
	if opts.SelfManagedTLS {
		opts.Args = append(slices.Clone(opts.Args), "--tls-mode=self-managed", "--tls-san=127.0.0.1", "--tls-check-interval=1s")
	} else {
		if err := w.makeCA(); err != nil {
			return nil, err
		}
		if _, err := w.IssueServingCert(); err != nil {
			return nil, err
		}
	}
	kubeconfig := filepath.Join(w.Dir, "kubeconfig")
	if err := writeClusterKubeconfig(c, kubeconfig); err != nil {
		return nil, err
	}
	for i := range opts.Replicas {
		p, err := w.start(ctx, bin, kubeconfig, i, opts)
		if err != nil {
			return nil, err
		}
		w.Replicas = append(w.Replicas, p)
	}
	if opts.Replicas > 1 {
		backends := make([]string, len(w.Replicas))
		for i, p := range w.Replicas {
			backends[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port))
		}
		if w.proxy, err = newRRProxy(backends); err != nil {
			return nil, err
		}
		w.URL = "https://" + w.proxy.Addr()
	} else {
		w.URL = "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(w.Replicas[0].Port))
	}
	cfgs, err := WebhookConfigurations(w.URL, w.CAPEM, opts.NoPolicy)
	if err != nil {
		return nil, err
	}
	if err := w.dropUnserved(ctx, cfgs); err != nil {
		return nil, err
	}
	if slices.Contains(opts.Args, "--mode=warn") {
		// The documented rollout: the policy warns too while the webhook
		// does.
		for _, o := range cfgs {
			if o.GetKind() == "ValidatingAdmissionPolicyBinding" {
				if err := unstructured.SetNestedStringSlice(o.Object, []string{"Warn"}, "spec", "validationActions"); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := c.apply(ctx, cfgs); err != nil {
		return nil, err
	}
	if opts.SelfManagedTLS {
		if w.CAPEM, err = c.waitCABundle(ctx); err != nil {
			return nil, err
		}
	}
	_, _ = fmt.Fprintf(logw, "lab: %s: mesh-webhook ×%d at %s\n", c.Name, len(w.Replicas), w.URL)
	return w, nil
}

// dropUnserved removes from cfgs the webhooks whose path the running
// mesh-webhook answers with 404: registered, they would fail every request
// they match (failurePolicy Fail). It lets the lab register every webhook
// of deploy/webhook while a handler is still being written; each dropped
// webhook is logged.
func (w *Webhook) dropUnserved(ctx context.Context, cfgs []*unstructured.Unstructured) error {
	// Only whether the path is routed matters here, not whom the
	// certificate names: the API server verifies it on every call.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback probe of routing only
	defer client.CloseIdleConnections()
	served := map[string]bool{}
	for _, o := range cfgs {
		hooks, found, _ := unstructured.NestedSlice(o.Object, "webhooks")
		if !found {
			continue
		}
		var keep []any
		for _, h := range hooks {
			url, _, _ := unstructured.NestedString(h.(map[string]any), "clientConfig", "url")
			ok, seen := served[url]
			if !seen {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("{}"))
				if err != nil {
					return err
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return fmt.Errorf("lab: probe mesh-webhook at %s: %w", url, err)
				}
				_ = resp.Body.Close()
				ok = resp.StatusCode != http.StatusNotFound
				served[url] = ok
			}
			if ok {
				keep = append(keep, h)
				continue
			}
			name, _, _ := unstructured.NestedString(h.(map[string]any), "name")
			_, _ = fmt.Fprintf(w.log, "lab: %s: mesh-webhook does not serve %s; %s webhook %s not registered\n", w.Cluster.Name, url, o.GetKind(), name)
		}
		if err := unstructured.SetNestedSlice(o.Object, keep, "webhooks"); err != nil {
			return err
		}
	}
	return nil
}

// ApplyWebhookConfig applies the ConfigMap mesh-system/mesh-webhook-config
// of deploy/webhook/base with data merged into its data (a key with an
// empty value is removed, to test the defaults of an absent key). The
// namespace must exist.
func (c *Cluster) ApplyWebhookConfig(ctx context.Context, data map[string]string) error {
	objs, err := ReadManifests("configmap.yaml")
	if err != nil {
		return err
	}
	if len(objs) != 1 || objs[0].GetKind() != "ConfigMap" {
		return errors.New("lab: deploy/webhook/base/configmap.yaml must hold exactly one ConfigMap")
	}
	cm := objs[0]
	cur, _, err := unstructured.NestedStringMap(cm.Object, "data")
	if err != nil {
		return fmt.Errorf("lab: configmap.yaml: %w", err)
	}
	if cur == nil {
		cur = map[string]string{}
	}
	for k, v := range data {
		if v == "" {
			delete(cur, k)
		} else {
			cur[k] = v
		}
	}
	if err := unstructured.SetNestedStringMap(cm.Object, cur, "data"); err != nil {
		return err
	}
	return c.apply(ctx, objs)
}

// InstallPolicy installs only the ValidatingAdmissionPolicy of
// deploy/webhook and its binding, with the mesh-system namespace and the
// ConfigMap they read (config merged as in ApplyWebhookConfig): no webhook
// process, no webhook configuration. The API server enforces a new policy
// a moment later: tests poll for it.
func (c *Cluster) InstallPolicy(ctx context.Context, config map[string]string) error {
	ns, err := ReadManifests("namespace.yaml")
	if err != nil {
		return err
	}
	if err := c.apply(ctx, ns); err != nil {
		return err
	}
	if err := c.ApplyWebhookConfig(ctx, config); err != nil {
		return err
	}
	objs, err := ReadManifests("policy.yaml")
	if err != nil {
		return err
	}
	return c.apply(ctx, objs)
}

// waitCABundle waits until mesh-webhook has patched caBundle into every
// webhook of both configurations, and returns it.
func (c *Cluster) waitCABundle(ctx context.Context) ([]byte, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		var bundle []byte
		complete := true
		for _, gvr := range []schema.GroupVersionResource{mutatingGVR, validatingGVR} {
			o, err := c.Dynamic.Resource(gvr).Get(ctx, "mesh-webhook", metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			hooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
			for _, h := range hooks {
				b64, _, _ := unstructured.NestedString(h.(map[string]any), "clientConfig", "caBundle")
				b, err := base64.StdEncoding.DecodeString(b64)
				if err != nil || len(b) == 0 {
					complete = false
					continue
				}
				bundle = b
			}
		}
		if complete && bundle != nil {
			return bundle, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lab: %s: mesh-webhook did not patch caBundle within 60s", c.Name)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitServed waits until the API server serves gvr (a new CRD is
// established).
func (c *Cluster) waitServed(ctx context.Context, gvr schema.GroupVersionResource) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: %s: %s not served: %w", c.Name, gvr.Resource, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func writeClusterKubeconfig(c *Cluster, path string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[c.Name] = &clientcmdapi.Cluster{Server: c.Config.Host, CertificateAuthorityData: c.Config.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.Config.CertData, ClientKeyData: c.Config.KeyData}
	cfg.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: "admin"}
	cfg.CurrentContext = c.Name
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (w *Webhook) start(ctx context.Context, bin, kubeconfig string, i int, opts WebhookOptions) (*WebhookProcess, error) {
	var ports [3]int
	for j := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[j] = p
	}
	p := &WebhookProcess{
		Port:        ports[0],
		MetricsAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		ProbeAddr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2])),
		LogPath:     filepath.Join(w.Dir, fmt.Sprintf("mesh-webhook-%d.log", i)),
		exited:      make(chan struct{}),
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--namespace=" + WebhookNamespace,
		"--bind-host=127.0.0.1",
		"--port=" + strconv.Itoa(p.Port),
		"--cert-dir=" + w.CertDir,
		"--metrics-bind-address=" + p.MetricsAddr,
		// Plain HTTP on loopback, so that Metric needs no token; a
		// Deployment serves metrics behind authentication.
		"--metrics-secure=false",
		"--health-probe-bind-address=" + p.ProbeAddr,
	}
	args = append(args, opts.Args...)
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Stdout, p.Cmd.Stderr = logf, logf
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !opts.Detach {
		// A test that dies (a panic, a -timeout) must not leave webhooks
		// behind.
		p.Cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	}
	if err := p.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab: start mesh-webhook: %w", err)
	}
	p.PID = p.Cmd.Process.Pid
	go func() {
		_ = p.Cmd.Wait()
		close(p.exited)
	}()
	if err := p.waitReady(ctx); err != nil {
		_ = p.Stop()
		return nil, err
	}
	return p, nil
}

func (p *WebhookProcess) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + p.ProbeAddr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("lab: mesh-webhook exited: %s", tail(p.LogPath))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: mesh-webhook not ready after 60s: %s", tail(p.LogPath))
		}
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// Stop sends SIGTERM and waits for the process to exit (SIGKILL after 20s).
func (p *WebhookProcess) Stop() error {
	if p.Cmd == nil || p.Cmd.Process == nil {
		return nil
	}
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(20 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("lab: mesh-webhook pid %d ignored SIGTERM", p.PID)
	}
}

// Stop stops every replica and the proxy. The webhook configurations stay
// registered, as when a Deployment is down.
func (w *Webhook) Stop() error {
	var errs []error
	for _, p := range w.Replicas {
		errs = append(errs, p.Stop())
	}
	if w.proxy != nil {
		errs = append(errs, w.proxy.Close())
	}
	return errors.Join(errs...)
}

// Uninstall deletes the webhook configurations and the policy.
func (w *Webhook) Uninstall(ctx context.Context) error {
	objs, err := WebhookConfigurations(w.URL, nil, false)
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range objs {
		gvr, err := gvrOf(o)
		if err != nil {
			return err
		}
		if err := w.Cluster.Dynamic.Resource(gvr).Delete(ctx, o.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Metric sums the samples of the named metric whose labels include every
// pair of labels, over all replicas.
func (w *Webhook) Metric(ctx context.Context, name string, labels map[string]string) (float64, error) {
	var sum float64
	for _, p := range w.Replicas {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.MetricsAddr+"/metrics", nil)
		if err != nil {
			return 0, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, fmt.Errorf("lab: metrics of mesh-webhook pid %d: %w", p.PID, err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
				continue
			}
			ok := true
			for k, v := range labels {
				if !strings.Contains(line, k+`="`+v+`"`) {
					ok = false
				}
			}
			if !ok {
				continue
			}
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err == nil {
				sum += v
			}
		}
		_ = resp.Body.Close()
	}
	return sum, nil
}

func (w *Webhook) makeCA() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "lab mesh-webhook CA " + w.Cluster.Name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	if w.ca, err = x509.ParseCertificate(der); err != nil {
		return err
	}
	w.caKey = key
	w.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return os.WriteFile(filepath.Join(w.Dir, "ca.crt"), w.CAPEM, 0o600)
}

var serial atomic.Int64

// IssueServingCert writes a new serving certificate for 127.0.0.1 (signed
// by the lab CA) to CertDir, key first, each file replaced atomically, and
// returns it.
func (w *Webhook) IssueServingCert() (*x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1000 + serial.Add(1)),
		Subject:      pkix.Name{CommonName: "mesh-webhook.mesh-system.svc"},
		DNSNames:     []string{"localhost", "mesh-webhook.mesh-system.svc"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(12 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, w.ca, &key.PublicKey, w.caKey)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"tls.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})},
		{"tls.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})},
	} {
		p := filepath.Join(w.CertDir, f.name)
		if err := os.WriteFile(p+".tmp", f.data, 0o600); err != nil {
			return nil, err
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			return nil, err
		}
	}
	return x509.ParseCertificate(der)
}

// ServedCert dials replica i and returns the certificate it serves.
func (w *Webhook) ServedCert(i int) (*x509.Certificate, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(w.CAPEM)
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp",
		net.JoinHostPort("127.0.0.1", strconv.Itoa(w.Replicas[i].Port)), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// rrProxy is the loopback stand-in for the webhook's Service: it spreads
// TCP connections over the replicas in turn, skipping replicas that do not
// answer.
type rrProxy struct {
	l        net.Listener
	backends []string
	next     atomic.Uint64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

func newRRProxy(backends []string) (*rrProxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &rrProxy{l: l, backends: backends, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	return p, nil
}

func (p *rrProxy) Addr() string { return p.l.Addr().String() }

func (p *rrProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.handle(c) })
	}
}

func (p *rrProxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *rrProxy) handle(c net.Conn) {
	defer c.Close()
	var b net.Conn
	for range p.backends {
		addr := p.backends[p.next.Add(1)%uint64(len(p.backends))]
		var err error
		if b, err = net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
			break
		}
	}
	if b == nil {
		return
	}
	defer b.Close()
	p.track(c, true)
	p.track(b, true)
	defer p.track(c, false)
	defer p.track(b, false)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
	<-done
}

func (p *rrProxy) Close() error {
	err := p.l.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// BuildWebhook builds only cmd/mesh-webhook into dir (as BuildProduct does),
// for tests that need nothing else.
func BuildWebhook(dir string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	ldflags := "-X " + ModulePath + "/pkg/version.Version=" + TestVersion + " -X " + ModulePath + "/pkg/version.Commit=lab"
	cmd := exec.Command("go", "build", "-ldflags", ldflags, "-o", filepath.Join(dir, "mesh-webhook"), "./cmd/mesh-webhook")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("lab: go build ./cmd/mesh-webhook: %w: %s", err, stderr.String())
	}
	return nil
}
