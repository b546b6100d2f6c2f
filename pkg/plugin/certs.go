package plugin

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/certs"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
)

const certsLong = `Make and install the certificates that let Istio's control planes in
several clusters trust each other: one shared root CA, one intermediate CA
per cluster signed by it, and Istio's "cacerts" Secret in every cluster.

The usual order is: certs root, certs intermediate CLUSTER…, certs install,
certs verify. Private keys are written 0600 (directories the commands create
are 0700; an existing --dir keeps its mode) and are never printed, except
inside an explicit "install -o yaml|json" and the 0600 backup install makes
of every cacerts it replaces.`

const certsExample = `  # A root, intermediates for two clusters, installed into both contexts
  kubectl mesh certs root
  kubectl mesh certs intermediate cluster1 cluster2
  kubectl mesh certs install --contexts cluster1,cluster2 --restart
  kubectl mesh certs verify --contexts cluster1,cluster2`

// NewCmdCerts returns `kubectl mesh certs` and its subcommands.
func NewCmdCerts(f cli.Factory, streams genericiooptions.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "certs",
		Short:   "Make, install and verify the mesh's shared root and per-cluster intermediate CAs",
		Long:    certsLong,
		Example: certsExample,
		Args:    cobra.NoArgs,
	}
	cmd.AddCommand(
		NewCmdCertsRoot(streams),
		NewCmdCertsIntermediate(streams),
		NewCmdCertsRotate(streams),
		NewCmdCertsInstall(f, streams),
		NewCmdCertsVerify(f, streams),
	)
	return cmd
}

// defaultCertsDir is where the certs commands keep their files unless
// --dir says otherwise.
const defaultCertsDir = "./mesh-certs"

// parseValidity reads --validity: a Go duration ("8760h") or a whole number
// of days ("90d") or years ("10y", 365 days each).
func parseValidity(flag, s string) (time.Duration, error) {
	bad := fmt.Errorf("--%s %q is not a duration; use e.g. 10y, 730d or 8760h", flag, s)
	if s == "" {
		return 0, bad
	}
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'y': 365 * 24 * time.Hour}[s[len(s)-1]]
	var d time.Duration
	if unit != 0 {
		n, err := strconv.Atoi(s[:len(s)-1])
		if err != nil {
			return 0, bad
		}
		d = time.Duration(n) * unit
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, bad
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("--%s %q must be positive", flag, s)
	}
	return d, nil
}

// validateCertsClusterName checks a cluster name that becomes a directory name
// and a certificate subject.
func validateCertsClusterName(name string) error {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return fmt.Errorf("cluster name %q is invalid (%s); use lower-case letters, digits and '-'", name, strings.Join(errs, "; "))
	}
	return nil
}

// targetContexts are the contexts of ts, for Factory.CheckContexts.
func targetContexts(ts []certs.Target) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.Context)
	}
	return out
}

// parseClusterTargets reads --contexts (each entry CTX or NAME=CTX) with
// optional --cluster-names (one name per context, in order). Without a name
// a cluster is named after its context.
func parseClusterTargets(contexts, names []string) ([]certs.Target, error) {
	if len(names) > 0 && len(names) != len(contexts) {
		return nil, fmt.Errorf("--cluster-names has %d entries but --contexts has %d; give one name per context", len(names), len(contexts))
	}
	seen := map[string]bool{}
	var out []certs.Target
	for i, entry := range contexts {
		t := certs.Target{Name: entry, Context: entry}
		if name, ctx, ok := strings.Cut(entry, "="); ok {
			if len(names) > 0 {
				return nil, fmt.Errorf("--contexts entry %q names its cluster and --cluster-names is set too; use one of them", entry)
			}
			t = certs.Target{Name: name, Context: ctx}
		}
		if len(names) > 0 {
			t.Name = names[i]
		}
		if t.Context == "" {
			return nil, fmt.Errorf("--contexts entry %q has no context; use CTX or NAME=CTX", entry)
		}
		if err := validateCertsClusterName(t.Name); err != nil {
			return nil, fmt.Errorf("--contexts entry %q: %w", entry, err)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("cluster %q appears twice in --contexts; list each cluster once", t.Name)
		}
		seen[t.Name] = true
		out = append(out, t)
	}
	return out, nil
}
