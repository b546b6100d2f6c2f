package main

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// Plugin is a Krew plugin manifest (krew.googlecontainertools.github.com/v1alpha2).
// The rendered file has its keys sorted (sigs.k8s.io/yaml goes through JSON);
// Krew does not care about their order.
type Plugin struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   PluginMetadata `json:"metadata"`
	Spec       PluginSpec     `json:"spec"`
}

// PluginMetadata holds the plugin's name, which is also its file's name.
type PluginMetadata struct {
	Name string `json:"name"`
}

// PluginSpec is what Krew shows and installs.
type PluginSpec struct {
	Version          string           `json:"version"`
	Homepage         string           `json:"homepage,omitempty"`
	ShortDescription string           `json:"shortDescription"`
	Description      string           `json:"description,omitempty"`
	Caveats          string           `json:"caveats,omitempty"`
	Platforms        []PluginPlatform `json:"platforms"`
}

// PluginPlatform is one archive and the os/arch it serves.
type PluginPlatform struct {
	Selector *Selector      `json:"selector"`
	URI      string         `json:"uri"`
	SHA256   string         `json:"sha256"`
	Bin      string         `json:"bin"`
	Files    []FileOperator `json:"files,omitempty"`
}

// Selector is the label selector Krew matches against os and arch.
type Selector struct {
	MatchLabels      map[string]string `json:"matchLabels,omitempty"`
	MatchExpressions []SelectorExpr    `json:"matchExpressions,omitempty"`
}

// SelectorExpr is a matchExpressions item.
type SelectorExpr struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

// FileOperator copies files out of the unpacked archive.
type FileOperator struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// ReadManifest reads a manifest strictly: an unknown field (a typo such as
// "sha265") is an error here rather than a value Krew silently ignores.
func ReadManifest(path string) (*Plugin, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p Plugin
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &p, nil
}

// WriteManifest writes p as YAML.
func WriteManifest(path string, p *Plugin) error {
	b, err := yaml.Marshal(p)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// platformOf is the os/arch a platform entry's matchLabels select; the
// renderer only deals with exact selectors, one archive each.
func platformOf(p PluginPlatform) (Platform, error) {
	if p.Selector == nil || p.Selector.MatchLabels["os"] == "" || p.Selector.MatchLabels["arch"] == "" || len(p.Selector.MatchExpressions) > 0 {
		return Platform{}, fmt.Errorf("every platform needs selector.matchLabels with exactly os and arch (one archive per platform), got %+v", p.Selector)
	}
	return Platform{OS: p.Selector.MatchLabels["os"], Arch: p.Selector.MatchLabels["arch"]}, nil
}

// RenderManifest fills the template for a release: spec.version, and for
// each platform the uri of its archive under baseURL and the archive's
// sha256. Every template platform needs an archive and every archive a
// platform, so a manifest never points at something that was not built.
func RenderManifest(tmpl *Plugin, version, baseURL string, archives []Archive) (*Plugin, error) {
	if err := ValidateVersion(version); err != nil {
		return nil, err
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "file") || (u.Scheme != "file" && u.Host == "") {
		return nil, fmt.Errorf("-base-url %q is not an absolute http(s) or file URL; pass where the archives are published, like https://github.com/OWNER/REPO/releases/download/%s", baseURL, version)
	}
	byPlatform := map[Platform]Archive{}
	for _, a := range archives {
		byPlatform[a.Platform] = a
	}
	out := *tmpl
	out.Spec.Version = version
	out.Spec.Platforms = make([]PluginPlatform, len(tmpl.Spec.Platforms))
	used := map[Platform]bool{}
	for i, pp := range tmpl.Spec.Platforms {
		path := fmt.Sprintf("spec.platforms[%d]", i)
		p, err := platformOf(pp)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		a, ok := byPlatform[p]
		if !ok {
			return nil, fmt.Errorf("%s selects %s, but no archive was built for it; add it to -platforms or remove it from the template", path, p)
		}
		if used[p] {
			return nil, fmt.Errorf("%s selects %s a second time; each os/arch needs exactly one platform entry", path, p)
		}
		used[p] = true
		if pp.Bin != p.Binary() {
			return nil, fmt.Errorf("%s.bin is %q, but the %s archive holds %q; set bin to %q", path, pp.Bin, p, p.Binary(), p.Binary())
		}
		pp.URI = strings.TrimSuffix(baseURL, "/") + "/" + a.Name
		pp.SHA256 = a.SHA256
		out.Spec.Platforms[i] = pp
	}
	for _, a := range archives {
		if !used[a.Platform] {
			return nil, fmt.Errorf("archive %s has no platform entry in the manifest template; add one selecting os: %s, arch: %s", a.Name, a.Platform.OS, a.Platform.Arch)
		}
	}
	return &out, nil
}
