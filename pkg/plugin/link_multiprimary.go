package plugin

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// validateMultiPrimary checks the flags of --multi-primary.
func (o *LinkOptions) validateMultiPrimary() error {
	if !o.MultiPrimary {
		for flag, set := range map[string]bool{"--network": len(o.Networks) > 0, "--server": len(o.Servers) > 0, "--no-secret-read": o.NoSecretRead, "--token-renew-before": o.TokenRenewBefore != 0} {
			if set {
				return fmt.Errorf("%s only applies with --multi-primary", flag)
			}
		}
		return nil
	}
	if o.TokenExpiry < time.Hour {
		return fmt.Errorf("--token-expiry %s is too short for a remote secret; use at least 1h", o.TokenExpiry)
	}
	if o.TokenRenewBefore < 0 || o.TokenRenewBefore >= o.TokenExpiry {
		return fmt.Errorf("--token-renew-before %s must be positive and shorter than --token-expiry %s", o.TokenRenewBefore, o.TokenExpiry)
	}
	return nil
}

// parseByContext parses --network and --server by context.
func (o *LinkOptions) parseByContext() error {
	var err error
	if o.networks, err = o.byContext("--network", o.Networks, true, func(v string) error {
		if errs := validationLabelValue(v); errs != "" {
			return fmt.Errorf("network %q is not a label value: %s", v, errs)
		}
		return nil
	}); err != nil {
		return err
	}
	o.servers, err = o.byContext("--server", o.Servers, false, func(v string) error {
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("server %q is not an https URL such as https://10.0.0.2:6443", v)
		}
		return nil
	})
	return err
}

// byContext parses a flag given as VALUE (for --to; with --bidirectional,
// for both clusters when bothWays) or CONTEXT=VALUE naming --from or --to.
func (o *LinkOptions) byContext(flag string, vals []string, bothWays bool, check func(string) error) (map[string]string, error) {
	out := map[string]string{}
	set := func(ctx, v string) error {
		if old, ok := out[ctx]; ok && old != v {
			return fmt.Errorf("%s gives %s both %q and %q; give each cluster one", flag, ctx, old, v)
		}
		out[ctx] = v
		return nil
	}
	for _, raw := range vals {
		ctx, v, named := strings.Cut(raw, "=")
		if !named || strings.Contains(ctx, "://") {
			ctx, v = "", raw
		}
		if err := check(v); err != nil {
			return nil, fmt.Errorf("%s %s: %w", flag, raw, err)
		}
		switch {
		case ctx == "" && o.Bidirectional && !bothWays:
			return nil, fmt.Errorf("%s %s names no cluster, but --bidirectional calls both; give each as %s CONTEXT=VALUE", flag, raw, flag)
		case ctx == "" && o.Bidirectional:
			if err := set(o.From, v); err != nil {
				return nil, err
			}
			ctx = o.To
		case ctx == "":
			ctx = o.To
		case ctx != o.From && ctx != o.To:
			return nil, fmt.Errorf("%s %s names %q, which is neither --from %q nor --to %q", flag, raw, ctx, o.From, o.To)
		case ctx == o.From && !o.Bidirectional && flag == "--server":
			return nil, fmt.Errorf("%s %s names --from %q, which this link does not call; the server address is the called cluster's", flag, raw, ctx)
		}
		if err := set(ctx, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// validationLabelValue says why v is no label value ("" when it is one).
func validationLabelValue(v string) string {
	if v == "" {
		return "it is empty"
	}
	return strings.Join(validation.IsValidLabelValue(v), "; ")
}
