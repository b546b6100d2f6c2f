package plugin

import (
	"maps"
	"strings"
	"testing"
	"time"
)

func TestLinkValidate(t *testing.T) {
	tests := map[string]struct {
		o    LinkOptions
		want string // substring of the error; "" for none
	}{
		"ok":                      {o: LinkOptions{From: "a", To: "b", DryRun: "none"}},
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
		"servers both ways":       {o: LinkOptions{From: "a", To: "b", Bidirectional: true, MultiPrimary: true, Servers: []string{"a=https://10.0.0.1:6443", "b=https://10.0.0.2:6443"}, Networks: []string{"a=n1", "b=n2"}, TokenExpiry: 24 * time.Hour, DryRun: "none"}},
		"short token":             {o: LinkOptions{From: "a", To: "b", MultiPrimary: true, TokenExpiry: time.Minute}, want: "--token-expiry"},
		"bad dry run":             {o: LinkOptions{From: "a", To: "b", DryRun: "maybe"}, want: "--dry-run"},
		"bad output":              {o: LinkOptions{From: "a", To: "b", Output: "wide"}, want: "--output"},
		"bad gateway address":     {o: LinkOptions{From: "a", To: "b", GatewayAddress: "gw:notaport"}, want: "gw:notaport"},
		"multi-primary network":   {o: LinkOptions{From: "a", To: "b", MultiPrimary: true, Networks: []string{"n"}, TokenExpiry: 24 * time.Hour}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v", tc.o, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate(%+v) = %v, want an error with %q", tc.o, err, tc.want)
			}
		})
	}
}

func TestUnlinkAndStatusValidate(t *testing.T) {
	if err := (&UnlinkOptions{From: "a", To: "a"}).Validate(); err == nil {
		t.Fatal("unlink of a cluster from itself must fail")
	}
	if err := (&UnlinkOptions{From: "a", To: "b", DryRun: "client"}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestContains(t *testing.T) {
	have := map[string]any{"a": "1", "b": map[string]any{"c": []any{"x", "y"}, "d": int64(2)}}
	tests := map[string]struct {
		want any
		ok   bool
	}{
		"subset":        {map[string]any{"b": map[string]any{"d": int64(2)}}, true},
		"list equal":    {map[string]any{"b": map[string]any{"c": []any{"x", "y"}}}, true},
		"list differs":  {map[string]any{"b": map[string]any{"c": []any{"x"}}}, false},
		"value differs": {map[string]any{"a": "2"}, false},
		"missing key":   {map[string]any{"z": "1"}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := contains(have, tc.want); got != tc.ok {
				t.Fatalf("contains(%v, %v) = %v", have, tc.want, got)
			}
		})
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
			tc.o.MultiPrimary, tc.o.TokenExpiry, tc.o.DryRun = true, 24*time.Hour, "none"
			if err := tc.o.Validate(); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(tc.o.networks, tc.networks) || !maps.Equal(tc.o.servers, tc.servers) {
				t.Fatalf("networks %v servers %v, want %v %v", tc.o.networks, tc.o.servers, tc.networks, tc.servers)
			}
		})
	}
}
