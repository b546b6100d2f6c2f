// Package config owns mesh-webhook's policy configuration: the host suffix
// the `.global` rules apply to, the VIP space, the allowed gateway ports and
// the enforcement mode, read from flags and from the mesh-webhook-config
// ConfigMap (mounted as a directory of files named after its keys).
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// Mode is how violations are enforced (rules.Mode).
type Mode = rules.Mode

// Enforcement modes, as rules defines them.
const (
	ModeDeny = rules.ModeDeny
	ModeWarn = rules.ModeWarn
)

// ConfigMapName is the ConfigMap (in the webhook's namespace) that holds the
// policy; its keys are the Key* constants.
const ConfigMapName = "mesh-webhook-config"

// ConfigMap keys, one per setting. List values are comma-separated.
const (
	KeySuffix       = "hostSuffix"
	KeyVIPRange     = "vipRange"
	KeyExcluded     = "excludedRanges"
	KeyGatewayPorts = "allowedGatewayPorts"
	KeyMode         = "mode"
)

// Config is the validated policy the handlers enforce; pkg/rules owns it.
type Config = rules.Policy

// Default is rules.DefaultPolicy.
func Default() Config { return rules.DefaultPolicy() }

// Options is the unvalidated form of Config, as flags and ConfigMap keys
// spell it.
type Options struct {
	Suffix       string
	VIPRange     string
	Excluded     []string
	GatewayPorts []string
	Mode         string
	// Dir is a mounted mesh-webhook-config ConfigMap; settings found there
	// apply unless the matching flag was given explicitly.
	Dir string

	flags *pflag.FlagSet
}

// NewOptions returns Options holding the defaults.
func NewOptions() *Options {
	return &Options{
		Suffix:       rules.DefaultSuffix,
		VIPRange:     rules.DefaultVIPRange,
		Excluded:     slices.Clone(rules.DefaultExcludedRanges),
		GatewayPorts: []string{strconv.Itoa(rules.GatewayPort)},
		Mode:         string(ModeDeny),
	}
}

// Flag names.
const (
	FlagSuffix       = "host-suffix"
	FlagVIPRange     = "vip-range"
	FlagExcluded     = "excluded-ranges"
	FlagGatewayPorts = "allowed-gateway-ports"
	FlagMode         = "mode"
	FlagConfigDir    = "config-dir"
)

// AddFlags registers the policy flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.flags = fs
	fs.StringVar(&o.Suffix, FlagSuffix, o.Suffix, "DNS zone of remote hosts; ServiceEntries with a host under it are checked and completed")
	fs.StringVar(&o.VIPRange, FlagVIPRange, o.VIPRange, "IPv4 CIDR that VIPs are allocated from")
	fs.StringSliceVar(&o.Excluded, FlagExcluded, o.Excluded, "CIDRs inside the VIP range that are never used")
	fs.StringSliceVar(&o.GatewayPorts, FlagGatewayPorts, o.GatewayPorts, "gateway ports endpoints may map service ports to; the first is the default")
	fs.StringVar(&o.Mode, FlagMode, o.Mode, "enforcement: deny rejects violations, warn admits them with warnings")
	fs.StringVar(&o.Dir, FlagConfigDir, o.Dir, "directory of a mounted "+ConfigMapName+" ConfigMap (keys "+strings.Join([]string{KeySuffix, KeyVIPRange, KeyExcluded, KeyGatewayPorts, KeyMode}, ", ")+"); explicit flags win")
}

func (o *Options) changed(name string) bool {
	return o.flags != nil && o.flags.Changed(name)
}

// Complete merges the ConfigMap directory, if any, into o: a key applies
// unless its flag was set on the command line.
func (o *Options) Complete() error {
	if o.Dir == "" {
		return nil
	}
	data := map[string]string{}
	for _, k := range []string{KeySuffix, KeyVIPRange, KeyExcluded, KeyGatewayPorts, KeyMode} {
		b, err := os.ReadFile(filepath.Join(o.Dir, k))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("--%s: %w", FlagConfigDir, err)
		}
		data[k] = strings.TrimSpace(string(b))
	}
	o.Merge(data)
	return nil
}

// Merge applies ConfigMap data to o, except for settings given as flags.
func (o *Options) Merge(data map[string]string) {
	set := func(key, flag string, dst *string) {
		if v, ok := data[key]; ok && !o.changed(flag) {
			*dst = v
		}
	}
	setList := func(key, flag string, dst *[]string) {
		if v, ok := data[key]; ok && !o.changed(flag) {
			*dst = splitList(v)
		}
	}
	set(KeySuffix, FlagSuffix, &o.Suffix)
	set(KeyVIPRange, FlagVIPRange, &o.VIPRange)
	setList(KeyExcluded, FlagExcluded, &o.Excluded)
	setList(KeyGatewayPorts, FlagGatewayPorts, &o.GatewayPorts)
	set(KeyMode, FlagMode, &o.Mode)
}

func splitList(v string) []string {
	var out []string
	for f := range strings.FieldsFuncSeq(v, func(r rune) bool { return r == ',' || r == '\n' || r == ' ' }) {
		out = append(out, f)
	}
	return out
}

// Config validates o; every error names the flag (and ConfigMap key) and
// says what a valid value looks like.
func (o *Options) Config() (Config, error) {
	var errs []error
	cfg := Config{Suffix: o.Suffix, Mode: Mode(o.Mode)}
	if err := rules.ValidateSuffix(o.Suffix); err != nil {
		errs = append(errs, fmt.Errorf("--%s (%s): %w", FlagSuffix, KeySuffix, err))
	}
	space, err := rules.NewVIPSpace(o.VIPRange, o.Excluded)
	if err != nil {
		errs = append(errs, fmt.Errorf("--%s/--%s (%s/%s): %w", FlagVIPRange, FlagExcluded, KeyVIPRange, KeyExcluded, err))
	}
	cfg.Space = space
	if len(o.GatewayPorts) == 0 {
		errs = append(errs, fmt.Errorf("--%s (%s) is empty; give at least %d", FlagGatewayPorts, KeyGatewayPorts, rules.GatewayPort))
	}
	for _, p := range o.GatewayPorts {
		n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
		if err != nil || n == 0 {
			errs = append(errs, fmt.Errorf("--%s (%s): %q is not a port number in 1-65535", FlagGatewayPorts, KeyGatewayPorts, p))
			continue
		}
		if !slices.Contains(cfg.AllowedGatewayPorts, uint32(n)) {
			cfg.AllowedGatewayPorts = append(cfg.AllowedGatewayPorts, uint32(n))
		}
	}
	switch cfg.Mode {
	case ModeDeny, ModeWarn:
	default:
		errs = append(errs, fmt.Errorf("--%s (%s): %q is not supported; use %s or %s", FlagMode, KeyMode, o.Mode, ModeDeny, ModeWarn))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}
