package plugin

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
)

// completeAndValidate runs what RunE runs before Run; the zero Factory
// has no kubeconfig flags, so Complete reads nothing.
func completeAndValidate(o *LinkOptions) error {
	if o.PrintFlags == nil {
		o.PrintFlags = cli.NewPrintFlags("linked")
	}
	if err := o.Complete(nil, nil); err != nil {
		return err
	}
	return o.Validate()
}

func TestLinkValidate(t *testing.T) {
	wide := "wide"
	tests := map[string]struct {
		o    LinkOptions
		want string // substring of the error; "" for none
	}{
		"ok":                      {o: LinkOptions{From: "a", To: "b", dryRunFlag: "none"}},
		"missing to":              {o: LinkOptions{From: "a"}, want: "--from and --to"},
		"same cluster":            {o: LinkOptions{From: "a", To: "a"}, want: "two different clusters"},
		"bad dns configmap":       {o: LinkOptions{From: "a", To: "b", DNSConfigMap: "coredns-custom"}, want: "NAMESPACE/NAME"},
		"dns cm bidirectional":    {o: LinkOptions{From: "a", To: "b", DNSConfigMap: "kube-system/x", Bidirectional: true}, want: "--bidirectional"},
		"network needs mp":        {o: LinkOptions{From: "a", To: "b", Networks: []string{"n"}}, want: "--multi-primary"},
		"server needs mp":         {o: LinkOptions{From: "a", To: "b", Servers: []string{"https://10.0.0.2:6443"}}, want: "--server only applies"},
		"no-secret-read needs mp": {o: LinkOptions{From: "a", To: "b", NoSecretRead: true}, want: "--no-secret-read only applies"},
		"bad network":             {o: LinkOptions{From: "a", To: "b", MultiPrimary: true, Networks: []string{"net work"}, TokenExpiry: 24 * time.Hour}, want: "not a label value"},
		"network of a stranger":   {o: LinkOptions{From: "a", To: "b", MultiPrimary: true, Networks: []string{"c=n"}, TokenExpiry: 24 * time.Hour}, want: "neither --from"},
		"two networks for one":    {o: LinkOptions{From: "a", To: "b", MultiPrimary: true, Networks: []string{"b=n1", "n2"}, TokenExpiry: 24 * time.Hour}, want: "both"},
		"bare server both ways":   {o: LinkOptions{From: "a", To: "b", Bidirectional: true, MultiPrimary: true, Servers: []string{"https://10.0.0.2:6443"}, TokenExpiry: 24 * time.Hour}, want: "CONTEXT=VALUE"},
		"server not https":        {o: LinkOptions{From: "a", To: "b", MultiPrimary: true, Servers: []string{"10.0.0.2:6443"}, TokenExpiry: 24 * time.Hour}, want: "https URL"},
		"server of the caller":    {o: LinkOptions{From: "a", To: "b", MultiPrimary: true, Servers: []string{"a=https://10.0.0.1:6443"}, TokenExpiry: 24 * time.Hour}, want: "does not call"},
		"renewal too long":        {o: LinkOptions{From: "a", To: "b", MultiPrimary: true, TokenExpiry: 24 * time.Hour, TokenRenewBefore: 48 * time.Hour}, want: "--token-renew-before"},
		"servers both ways":       {o: LinkOptions{From: "a", To: "b", Bidirectional: true, MultiPrimary: true, Servers: []string{"a=https://10.0.0.1:6443", "b=https://10.0.0.2:6443"}, Networks: []string{"a=n1", "b=n2"}, TokenExpiry: 24 * time.Hour, dryRunFlag: "none"}},
		"short token":             {o: LinkOptions{From: "a", To: "b", MultiPrimary: true, TokenExpiry: time.Minute}, want: "--token-expiry"},
		"bad dry run":             {o: LinkOptions{From: "a", To: "b", dryRunFlag: "maybe"}, want: "--dry-run"},
		"bad output":              {o: LinkOptions{From: "a", To: "b", PrintFlags: withOutput(cli.NewPrintFlags("linked"), wide)}, want: "--output"},
		"bad gateway address":     {o: LinkOptions{From: "a", To: "b", GatewayAddress: "gw:notaport"}, want: "gw:notaport"},
		"multi-primary network":   {o: LinkOptions{From: "a", To: "b", MultiPrimary: true, Networks: []string{"n"}, TokenExpiry: 24 * time.Hour}},
		"-o name":                 {o: LinkOptions{From: "a", To: "b", PrintFlags: withOutput(cli.NewPrintFlags("linked"), "name")}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := completeAndValidate(&tc.o)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Complete and Validate(%+v) = %v", tc.o, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Complete and Validate(%+v) = %v, want an error with %q", tc.o, err, tc.want)
			}
		})
	}
}

func withOutput(pf *cli.PrintFlags, format string) *cli.PrintFlags {
	pf.OutputFormat = &format
	return pf
}

// A bare --dry-run is client, as in kubectl, and the value is parsed once,
// in Complete.
func TestLinkDryRunFlag(t *testing.T) {
	streams := genericiooptions.NewTestIOStreamsDiscard()
	for arg, want := range map[string]cli.DryRun{"": cli.DryRunNone, "--dry-run": cli.DryRunClient, "--dry-run=server": cli.DryRunServer, "--dry-run=none": cli.DryRunNone} {
		flags := []string{"--from", "a", "--to", "b"}
		if arg != "" {
			flags = append(flags, arg)
		}
		lo := NewLinkOptions(cli.Factory{}, streams)
		uo := NewUnlinkOptions(cli.Factory{}, streams)
		for _, c := range []struct {
			cmd      *cobra.Command
			complete func() error
			dryRun   *cli.DryRun
		}{
			{newCmdLink(lo), func() error { return lo.Complete(nil, nil) }, &lo.dryRun},
			{newCmdUnlink(uo), func() error { return uo.Complete(nil, nil) }, &uo.dryRun},
		} {
			if err := c.cmd.ParseFlags(flags); err != nil {
				t.Fatal(err)
			}
			if err := c.complete(); err != nil {
				t.Fatalf("%s %q: Complete: %v", c.cmd.Name(), arg, err)
			}
			if *c.dryRun != want {
				t.Errorf("%s %q: dry run %v, want %v", c.cmd.Name(), arg, *c.dryRun, want)
			}
		}
	}
}

func TestUnlinkValidate(t *testing.T) {
	same := NewUnlinkOptions(cli.Factory{}, genericiooptions.NewTestIOStreamsDiscard())
	same.From, same.To = "a", "a"
	if err := same.Validate(); err == nil {
		t.Fatal("unlink of a cluster from itself must fail")
	}
	ok := NewUnlinkOptions(cli.Factory{}, genericiooptions.NewTestIOStreamsDiscard())
	ok.From, ok.To, ok.dryRunFlag = "a", "b", "client"
	if err := ok.Complete(nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := NewUnlinkOptions(cli.Factory{}, genericiooptions.NewTestIOStreamsDiscard())
	bad.From, bad.To, bad.dryRunFlag = "a", "b", "maybe"
	if err := bad.Complete(nil, nil); err == nil || !strings.Contains(err.Error(), "--dry-run") {
		t.Fatalf("unlink --dry-run=maybe: %v", err)
	}
}

func TestLinkByContext(t *testing.T) {
	tests := map[string]struct {
		o        LinkOptions
		networks map[string]string
		servers  map[string]string
	}{
		"bare network: the called cluster": {o: LinkOptions{From: "a", To: "b", Networks: []string{"n"}}, networks: map[string]string{"b": "n"}, servers: map[string]string{}},
		"bare network both ways: both":     {o: LinkOptions{From: "a", To: "b", Bidirectional: true, Networks: []string{"n"}}, networks: map[string]string{"a": "n", "b": "n"}, servers: map[string]string{}},
		"by context": {o: LinkOptions{From: "a", To: "b", Bidirectional: true, Networks: []string{"a=n1", "b=n2"}, Servers: []string{"a=https://10.0.0.1:6443", "b=https://10.0.0.2:6443"}},
			networks: map[string]string{"a": "n1", "b": "n2"}, servers: map[string]string{"a": "https://10.0.0.1:6443", "b": "https://10.0.0.2:6443"}},
		"bare server": {o: LinkOptions{From: "a", To: "b", Servers: []string{"https://b.example.com:6443"}}, networks: map[string]string{}, servers: map[string]string{"b": "https://b.example.com:6443"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.o.MultiPrimary, tc.o.TokenExpiry = true, 24*time.Hour
			if err := completeAndValidate(&tc.o); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(tc.o.networks, tc.networks) || !maps.Equal(tc.o.servers, tc.servers) {
				t.Fatalf("networks %v servers %v, want %v %v", tc.o.networks, tc.o.servers, tc.networks, tc.servers)
			}
		})
	}
}
