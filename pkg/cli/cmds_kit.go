package cli

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// ClusterFromKubeconfig returns clients for a kubeconfig that is not the
// user's, such as the one a remote secret holds, with the factory's rate
// limit, timeout and hook: status asks a remote secret's server, as the
// secret's token, what that token may do. Context is the kubeconfig's
// current context.
func (f Factory) ClusterFromKubeconfig(kubeconfig []byte) (*Cluster, error) {
	cc, err := clientcmd.NewClientConfigFromBytes(kubeconfig)
	if err != nil {
		return nil, err
	}
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, err
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, err
	}
	f.tune(cfg)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Cluster{Context: raw.CurrentContext, Config: cfg, Kube: kube, Dynamic: dyn}, nil
}

// Failures turns the failed rows of a table into one error for the exit
// code; the table above it already says what failed where. verb names the
// command ("route failed for …").
func Failures(rows []Row, verb string) error {
	var msgs []string
	for _, r := range rows {
		switch {
		case r.Err == nil:
		case r.Kind == "":
			msgs = append(msgs, fmt.Sprintf("%s: %v", r.Cluster, r.Err))
		default:
			msgs = append(msgs, fmt.Sprintf("%s: %s %s/%s: %v", r.Cluster, LowerKind(r.Kind), r.Namespace, r.Name, r.Err))
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	slices.Sort(msgs)
	msgs = slices.Compact(msgs)
	return fmt.Errorf("%s failed for %d object(s):\n  %s", verb, len(msgs), strings.Join(msgs, "\n  "))
}
