package plugin

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// completionTimeout bounds the API calls behind one shell completion: a
// slow or unreachable cluster must not hang the user's TAB key.
const completionTimeout = 5 * time.Second

// contextFlags name kubeconfig contexts, alone or comma-separated, in any
// command that has them.
var contextFlags = []string{"context", "from", "to", "contexts"}

// RegisterCompletions wires shell completion into every command of the tree
// by flag and command name, so a new subcommand gets it without extra code:
// --context, --from, --to and --contexts complete kubeconfig contexts,
// -n/--namespace the namespaces of the cluster the command reads (--from
// when the command has it, else --context), and the arguments of `export`
// and `route` the Services of that namespace. kubectl reaches it through the
// kubectl_complete-mesh helper, which calls cobra's __complete.
func RegisterCompletions(root *cobra.Command, f cli.Factory) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		register := func(fl *pflag.Flag) {
			fn := flagCompletion(f, fl.Name)
			if fn == nil {
				return
			}
			// Persistent flags are shared by pointer with every
			// subcommand; register each flag once.
			if _, ok := c.GetFlagCompletionFunc(fl.Name); ok {
				return
			}
			_ = c.RegisterFlagCompletionFunc(fl.Name, fn)
		}
		c.PersistentFlags().VisitAll(register)
		c.Flags().VisitAll(register)
		if (c.Name() == "export" || c.Name() == "route") && c.ValidArgsFunction == nil && len(c.ValidArgs) == 0 {
			c.ValidArgsFunction = completeServices(f)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func flagCompletion(f cli.Factory, name string) cobra.CompletionFunc {
	switch {
	case slices.Contains(contextFlags, name):
		return completeContexts(f)
	case name == "namespace":
		return completeNamespaces(f)
	}
	return nil
}

// completeContexts offers the kubeconfig's contexts. For list flags
// (--to a,b / --contexts a,NAME=b) it completes the last item and keeps
// what is typed before it, leaving out contexts already listed.
func completeContexts(f cli.Factory) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		contexts, err := f.Contexts()
		if err != nil {
			cobra.CompDebugln("kubectl mesh: "+err.Error(), true)
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		prefix, last := "", toComplete
		if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
			prefix, last = toComplete[:i+1], toComplete[i+1:]
		}
		// certs install --contexts takes NAME=CONTEXT items.
		if i := strings.IndexByte(last, '='); i >= 0 {
			prefix, last = prefix+last[:i+1], last[i+1:]
		}
		listed := map[string]bool{}
		for item := range strings.SplitSeq(strings.TrimSuffix(prefix, ","), ",") {
			_, ctx, found := strings.Cut(item, "=")
			if !found {
				ctx = item
			}
			listed[ctx] = true
		}
		var out []string
		for _, c := range contexts {
			if strings.HasPrefix(c, last) && !listed[c] {
				out = append(out, prefix+c)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completionContext bounds a completion's requests; Ctrl-C in the shell
// cancels them too.
func completionContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	parent := cmd.Context()
	if parent == nil {
		parent = context.Background()
	}
	return context.WithTimeout(parent, completionTimeout)
}

// sourceContext is the context a command reads Services and namespaces
// from: --from when the command has it and it is set, else "" (the
// --context or current context).
func sourceContext(cmd *cobra.Command) string {
	if fl := cmd.Flag("from"); fl != nil {
		return fl.Value.String()
	}
	return ""
}

// completeNames offers the names list finds in the source cluster that
// start with toComplete and are not in given. A completion never fails:
// an error is only logged for --debug.
func completeNames(cmd *cobra.Command, f cli.Factory, toComplete string, given []string, list func(context.Context, *cli.Cluster) ([]string, error)) ([]string, cobra.ShellCompDirective) {
	ctx, cancel := completionContext(cmd)
	defer cancel()
	c, err := f.Cluster(sourceContext(cmd))
	if err != nil {
		cobra.CompDebugln("kubectl mesh: "+err.Error(), true)
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names, err := list(ctx, c)
	if err != nil {
		cobra.CompDebugln("kubectl mesh: "+c.Context+": "+err.Error(), true)
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, name := range names {
		if strings.HasPrefix(name, toComplete) && !slices.Contains(given, name) {
			out = append(out, name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func completeNamespaces(f cli.Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return completeNames(cmd, f, toComplete, nil, func(ctx context.Context, c *cli.Cluster) ([]string, error) {
			list, err := c.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			return namesOf(list, err)
		})
	}
}

// completeServices offers the Services of the source cluster's namespace
// (-n, else the context's namespace, else default) not already given.
func completeServices(f cli.Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return completeNames(cmd, f, toComplete, args, func(ctx context.Context, c *cli.Cluster) ([]string, error) {
			list, err := c.Kube.CoreV1().Services(completionNamespace(cmd, f, c.Context)).List(ctx, metav1.ListOptions{})
			return namesOf(list, err)
		})
	}
}

// completionNamespace is -n, else the context's namespace, else default.
func completionNamespace(cmd *cobra.Command, f cli.Factory, context string) string {
	if fl := cmd.Flag("namespace"); fl != nil && fl.Value.String() != "" {
		return fl.Value.String()
	}
	if raw, err := f.RawConfig(); err == nil && raw.Contexts[context] != nil && raw.Contexts[context].Namespace != "" {
		return raw.Contexts[context].Namespace
	}
	return metav1.NamespaceDefault
}

// namesOf are the names of a list's items.
func namesOf(list runtime.Object, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(items))
	for _, item := range items {
		if m, err := meta.Accessor(item); err == nil {
			names = append(names, m.GetName())
		}
	}
	return names, nil
}
