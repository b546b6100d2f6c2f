package plugin

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
)

// exportScope is what export and unexport share: which Services, from
// which cluster into which, under which namespace, and how they write and
// print.
type exportScope struct {
	Services        []string
	From            string
	To              []string
	FromClusterName string
	TargetNamespace string
	PrintFlags      *cli.PrintFlags

	dryRunFlag string
	dryRun     cli.DryRun
	factory    cli.Factory
	namespace  string
}

// addFlags adds the shared flags; clusterName and targetNamespace say what
// --from-cluster-name names and what --target-namespace holds for this
// command.
func (s *exportScope) addFlags(cmd *cobra.Command, clusterName, targetNamespace string) {
	fl := cmd.Flags()
	fl.StringVar(&s.From, "from", "", "Kubeconfig context of the source cluster (default: the current context).")
	fl.StringSliceVar(&s.To, "to", nil, "Kubeconfig contexts of the target clusters, comma-separated.")
	fl.StringVar(&s.FromClusterName, "from-cluster-name", "", "Name of the source cluster "+clusterName+" (default: the --from context name).")
	fl.StringVar(&s.TargetNamespace, "target-namespace", "", "Namespace "+targetNamespace+" in the targets (default: the Service's namespace).")
	cli.AddDryRunFlag(cmd, &s.dryRunFlag)
	s.PrintFlags.AddFlags(cmd)
}

// complete takes the Services, parses --dry-run and defaults the shared
// flags: --from is the current context, --from-cluster-name the --from
// context, and --target-namespace the namespace (-n); the clusters' flags
// must apply to the contexts reached.
func (s *exportScope) complete(services []string) error {
	s.Services = services
	var err error
	if s.dryRun, err = cli.ParseDryRun(s.dryRunFlag); err != nil {
		return err
	}
	if s.namespace, _, err = s.factory.Getter.ToRawKubeConfigLoader().Namespace(); err != nil {
		return err
	}
	if s.From == "" {
		if s.From, err = s.factory.CurrentContext(); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
	}
	if s.FromClusterName == "" {
		s.FromClusterName = s.From
	}
	if s.TargetNamespace == "" {
		s.TargetNamespace = s.namespace
	}
	return s.factory.CheckContexts(append([]string{s.From}, s.To...)...)
}
