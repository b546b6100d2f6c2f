package clitest

import (
	"fmt"
	"path/filepath"
	"testing"

	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
)

// Clusters are the fake clusters of one test, by context; the first is
// the kubeconfig's current context.
type Clusters []*Cluster

// Factory hands the clusters to the commands, as Cluster(context) does on
// real ones. Its Getter is a *genericclioptions.ConfigFlags (cli's, with
// kubectl mesh's defaults) whose --kubeconfig names a file with one context
// per cluster, for the commands that read the kubeconfig (contexts,
// current context, -n); tests that build the root command pass it on.
func (cs Clusters) Factory(t testing.TB) cli.Factory {
	t.Helper()
	cf := cli.NewConfigFlags()
	path := cs.Kubeconfig(t)
	cf.KubeConfig = &path
	f := cli.NewFactory(cf)
	f.ClusterFor = cs.ClusterFor
	return f
}

// ClusterFor is the cluster of a context; a context of none of them is an
// error as the kubeconfig gives it.
func (cs Clusters) ClusterFor(context string) (*cli.Cluster, error) {
	for _, c := range cs {
		if c.Context == context {
			return c.Cluster, nil
		}
	}
	return nil, fmt.Errorf("context %q is not in the kubeconfig", context)
}

// Kubeconfig writes a kubeconfig with one context per cluster, each with
// a cluster of the same name at its fake server, and returns its path.
func (cs Clusters) Kubeconfig(t testing.TB) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "t"}
	for i, c := range cs {
		cfg.Clusters[c.Context] = &clientcmdapi.Cluster{Server: server(c.Context)}
		cfg.Contexts[c.Context] = &clientcmdapi.Context{Cluster: c.Context, AuthInfo: "u"}
		if i == 0 {
			cfg.CurrentContext = c.Context
		}
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// Writes are the writes of every cluster since the last Reset, cluster by
// cluster.
func (cs Clusters) Writes() []k8stesting.Action {
	var all []k8stesting.Action
	for _, c := range cs {
		all = append(all, c.Writes()...)
	}
	return all
}

// Reset forgets the requests every cluster received so far.
func (cs Clusters) Reset() {
	for _, c := range cs {
		c.Reset()
	}
}
