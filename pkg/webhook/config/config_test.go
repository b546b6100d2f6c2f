package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestOptionsConfig(t *testing.T) {
	tests := map[string]struct {
		args    []string
		files   map[string]string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		"defaults": {check: func(t *testing.T, c Config) {
			if c.Suffix != "global" || c.Mode != ModeDeny || c.GatewayPort() != 15443 || c.Space.String() != "240.0.0.0/4 except 240.240.0.0/16, 255.255.255.255/32" {
				t.Errorf("defaults = %+v (%s)", c, c.Space)
			}
		}},
		"flags": {args: []string{"--mode=warn", "--vip-range=241.0.0.0/8", "--excluded-ranges=241.1.0.0/16", "--allowed-gateway-ports=31443,15443", "--host-suffix=mesh.example"},
			check: func(t *testing.T, c Config) {
				if c.Mode != ModeWarn || c.Suffix != "mesh.example" || c.Space.String() != "241.0.0.0/8 except 241.1.0.0/16" || !slices.Equal(c.AllowedGatewayPorts, []uint32{31443, 15443}) {
					t.Errorf("config = %+v (%s)", c, c.Space)
				}
			}},
		"configmap": {files: map[string]string{KeyMode: "warn\n", KeyGatewayPorts: "15443, 31443", KeyExcluded: "240.240.0.0/16\n240.0.0.0/24"},
			check: func(t *testing.T, c Config) {
				if c.Mode != ModeWarn || !slices.Equal(c.AllowedGatewayPorts, []uint32{15443, 31443}) || len(c.Space.Excluded()) != 2 {
					t.Errorf("config = %+v (%s)", c, c.Space)
				}
			}},
		"flag wins over configmap": {args: []string{"--mode=deny"}, files: map[string]string{KeyMode: "warn"},
			check: func(t *testing.T, c Config) {
				if c.Mode != ModeDeny {
					t.Errorf("mode = %s, want the flag's deny", c.Mode)
				}
			}},
		"bad mode":     {args: []string{"--mode=audit"}, wantErr: "--mode (mode): \"audit\" is not supported"},
		"bad range":    {files: map[string]string{KeyVIPRange: "240.0.0.0"}, wantErr: "--vip-range"},
		"bad port":     {args: []string{"--allowed-gateway-ports=99999"}, wantErr: "--allowed-gateway-ports"},
		"no ports":     {files: map[string]string{KeyGatewayPorts: ""}, wantErr: "is empty"},
		"bad suffix":   {args: []string{"--host-suffix=.global"}, wantErr: "--host-suffix"},
		"all at once":  {args: []string{"--mode=x", "--host-suffix=A_B"}, wantErr: "--host-suffix (hostSuffix): host suffix \"A_B\" is not a DNS name"},
		"missing file": {files: map[string]string{}, check: func(t *testing.T, c Config) {}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := NewOptions()
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			o.AddFlags(fs)
			if tc.files != nil {
				dir := t.TempDir()
				for k, v := range tc.files {
					if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				tc.args = append(tc.args, "--config-dir="+dir)
			}
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if err := o.Complete(); err != nil {
				t.Fatal(err)
			}
			c, err := o.Config()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("args %v files %v: error %v, want one containing %q", tc.args, tc.files, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("args %v files %v: %v", tc.args, tc.files, err)
			}
			tc.check(t, c)
		})
	}
}
