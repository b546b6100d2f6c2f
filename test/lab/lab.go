package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// quietOnce silences controller-runtime's logger for envtest, which otherwise
// prints a stack trace complaining that no logger was set.
var quietOnce sync.Once

// Options configure a lab.
type Options struct {
	// Clusters names the clusters; default cluster1, cluster2, cluster3.
	// Furniture follows the position: the first has a LoadBalancer IP, the
	// second a LoadBalancer hostname and kube-dns, the third no LoadBalancer
	// (NodePort discovery); further ones repeat the first profile.
	Clusters []string
	// Dir keeps each cluster's etcd data and certificates (Dir/<name>/…),
	// so that Detach-ed processes can be found and cleaned up. Default: a
	// temporary directory removed by Stop.
	Dir string
	// CurrentIstio names clusters (of Clusters) that get the furniture of
	// a current Istio multi-network install instead (furnishCurrentIstio):
	// no istiocoredns, an east-west gateway, network labels, the mesh ID,
	// Istio's reader account; and the guide's sample apps.
	CurrentIstio []string
	// NoFurniture starts bare API servers with only the Istio CRDs.
	NoFurniture bool
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Lab is a set of running clusters and the kubeconfig that reaches them.
type Lab struct {
	Clusters   []*Cluster
	Dir        string
	Kubeconfig string // path of a kubeconfig with one context per cluster
	// PathPrepend replaces BinDir on PATH for programs run against the lab,
	// e.g. a directory holding freshly built product binaries.
	PathPrepend string

	ownsDir bool
}

// Cluster is one running API server.
type Cluster struct {
	Name  string
	Index int // 0-based position, selects the furniture profile
	// CurrentIstio: the cluster has current-Istio furniture; CurrentIndex
	// is its position among such clusters.
	CurrentIstio bool
	CurrentIndex int
	Env          *envtest.Environment
	Config       *rest.Config // cluster-admin (system:masters) client config
	Kube         kubernetes.Interface
	Dynamic      dynamic.Interface
	Dir          string
}

// DefaultClusters are the lab's cluster (and context) names.
var DefaultClusters = []string{"cluster1", "cluster2", "cluster3"}

// Start starts every cluster in parallel, installs the Istio CRDs (waiting
// until they are established) and the furniture, and writes the kubeconfig
// to <Dir>/kubeconfig.
func Start(ctx context.Context, opts Options) (_ *Lab, err error) {
	if len(opts.Clusters) == 0 {
		opts.Clusters = DefaultClusters
	}
	quietOnce.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	l := &Lab{Dir: opts.Dir}
	if l.Dir == "" {
		if l.Dir, err = os.MkdirTemp("", "kubectl-mesh-lab-"); err != nil {
			return nil, err
		}
		l.ownsDir = true
	}
	if l.Dir, err = filepath.Abs(l.Dir); err != nil {
		return nil, err
	}
	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	for _, b := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := Binary(b); err != nil {
			return nil, err
		}
	}
	crds, err := IstioCRDPath()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = l.Stop()
		}
	}()

	l.Clusters = make([]*Cluster, len(opts.Clusters))
	errs := make([]error, len(opts.Clusters))
	var wg sync.WaitGroup
	current := 0
	for i, name := range opts.Clusters {
		c := &Cluster{Name: name, Index: i, Dir: filepath.Join(l.Dir, name), CurrentIstio: slices.Contains(opts.CurrentIstio, name), CurrentIndex: current}
		if c.CurrentIstio {
			current++
		}
		l.Clusters[i] = c
		wg.Go(func() {
			start := time.Now()
			if err := c.start(binDir, crds); err != nil {
				errs[i] = fmt.Errorf("lab: start %s: %w", name, err)
				return
			}
			if !opts.NoFurniture {
				if err := c.furnish(ctx); err != nil {
					errs[i] = fmt.Errorf("lab: furnish %s: %w", name, err)
					return
				}
			}
			_, _ = fmt.Fprintf(logw, "lab: %s ready at %s (%s)\n", name, c.Config.Host, time.Since(start).Round(100*time.Millisecond))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	l.Kubeconfig = filepath.Join(l.Dir, "kubeconfig")
	if err := l.WriteKubeconfig(l.Kubeconfig); err != nil {
		return nil, err
	}
	return l, nil
}

func (c *Cluster) start(binDir, crdPath string) error {
	if err := os.MkdirAll(filepath.Join(c.Dir, "etcd"), 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(c.Dir, "pki"), 0o700); err != nil {
		return err
	}
	c.Env = &envtest.Environment{
		BinaryAssetsDirectory: binDir,
		CRDInstallOptions: envtest.CRDInstallOptions{
			Paths:              []string{crdPath},
			ErrorIfPathMissing: true,
		},
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	c.Env.ControlPlane.Etcd = &envtest.Etcd{DataDir: filepath.Join(c.Dir, "etcd")}
	api := c.Env.ControlPlane.GetAPIServer()
	api.CertDir = filepath.Join(c.Dir, "pki")
	if _, err := c.Env.Start(); err != nil {
		return err
	}
	user, err := c.Env.AddUser(envtest.User{Name: "lab-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	c.Config = rest.CopyConfig(user.Config())
	c.Config.QPS, c.Config.Burst = 200, 400
	if c.Kube, err = kubernetes.NewForConfig(c.Config); err != nil {
		return err
	}
	if c.Dynamic, err = dynamic.NewForConfig(c.Config); err != nil {
		return err
	}
	return nil
}

// Stop stops every cluster and removes the lab directory if Start made it.
func (l *Lab) Stop() error {
	var errs []error
	for _, c := range l.Clusters {
		if c == nil || c.Env == nil {
			continue
		}
		if err := c.Env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("lab: stop %s: %w", c.Name, err))
		}
	}
	if l.ownsDir {
		errs = append(errs, os.RemoveAll(l.Dir))
	}
	return errors.Join(errs...)
}

// Cluster returns the cluster of that name, or nil.
func (l *Lab) Cluster(name string) *Cluster {
	for _, c := range l.Clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// KubeconfigBytes renders a kubeconfig with one context per cluster, named
// after the cluster; the current context is the first cluster.
func (l *Lab) KubeconfigBytes() ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	for _, c := range l.Clusters {
		cfg.Clusters[c.Name] = &clientcmdapi.Cluster{
			Server:                   c.Config.Host,
			CertificateAuthorityData: c.Config.CAData,
		}
		cfg.AuthInfos["admin@"+c.Name] = &clientcmdapi.AuthInfo{
			ClientCertificateData: c.Config.CertData,
			ClientKeyData:         c.Config.KeyData,
		}
		cfg.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: "admin@" + c.Name, Namespace: "default"}
	}
	if len(l.Clusters) > 0 {
		cfg.CurrentContext = l.Clusters[0].Name
	}
	return clientcmd.Write(*cfg)
}

// WriteKubeconfig writes KubeconfigBytes to path with mode 0600.
func (l *Lab) WriteKubeconfig(path string) error {
	b, err := l.KubeconfigBytes()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// Env is the environment for programs run against the lab: KUBECONFIG set to
// the lab's, and BinDir first on PATH so that the real kubectl discovers the
// kubectl-mesh plugin built there.
func (l *Lab) Env() ([]string, error) {
	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	env := make([]string, 0, len(os.Environ())+2)
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KUBECONFIG=") || strings.HasPrefix(kv, "PATH=") {
			continue
		}
		env = append(env, kv)
	}
	// With PathPrepend the product binaries come from there alone: a second
	// kubectl-mesh in BinDir would overshadow-warn in kubectl's plugin
	// discovery. kubectl itself is always run by its absolute path.
	dirs := []string{binDir}
	if l.PathPrepend != "" {
		dirs = []string{l.PathPrepend}
	}
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if d != binDir && d != "" {
			dirs = append(dirs, d)
		}
	}
	return append(env, "KUBECONFIG="+l.Kubeconfig, "PATH="+strings.Join(dirs, string(os.PathListSeparator))), nil
}

// Kubectl runs the lab's real kubectl with the lab's kubeconfig. stdin may be
// nil. The error carries stderr.
func (l *Lab) Kubectl(ctx context.Context, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	kubectl, err := Binary("kubectl")
	if err != nil {
		return "", "", err
	}
	env, err := l.Env()
	if err != nil {
		return "", "", err
	}
	cmd := exec.CommandContext(ctx, kubectl, args...)
	cmd.Env = env
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), errb.String(), err
}
