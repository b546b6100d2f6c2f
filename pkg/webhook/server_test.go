package webhook

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestOptionsValidate(t *testing.T) {
	tests := map[string]struct {
		args    []string
		wantErr []string
	}{
		"defaults":     {},
		"self-managed": {args: []string{"--tls-mode=self-managed", "--tls-san=127.0.0.1"}},
		"bad tls mode": {args: []string{"--tls-mode=acme"}, wantErr: []string{`--tls-mode "acme" is not supported`}},
		"bad port":     {args: []string{"--port=0"}, wantErr: []string{"--port 0"}},
		"no cert dir":  {args: []string{"--cert-dir="}, wantErr: []string{"--cert-dir is empty"}},
		"short validity": {args: []string{"--tls-mode=self-managed", "--cert-validity=10m"},
			wantErr: []string{"--cert-validity 10m0s is too short"}},
		"bad policy and qps": {args: []string{"--mode=loud", "--kube-api-qps=0"},
			wantErr: []string{`--mode (mode): "loud"`, "--kube-api-qps"}},
		"no namespace": {args: []string{"--namespace="}, wantErr: []string{"--namespace is empty"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := NewOptions()
			fs := pflag.NewFlagSet("mesh-webhook", pflag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := o.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("%v: %v", tc.args, err)
				}
				return
			}
			for _, want := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%v: error %v, want one containing %q", tc.args, err, want)
				}
			}
		})
	}
}
