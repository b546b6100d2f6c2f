package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

const (
	modulePath = "github.com/kubectl-mesh/kubectl-mesh"
	// ChecksumsFile lists "<sha256>  <archive>" per line, the format of
	// sha256sum, so users can check downloads with `sha256sum -c`.
	ChecksumsFile = "checksums.txt"
	// ManifestFile is the rendered Krew manifest; Krew requires the file
	// name to be the plugin name.
	ManifestFile = "mesh.yaml"
	// CompletionScript is the helper kubectl (1.26+) runs to complete
	// `kubectl mesh …`; CompletionScriptWindows is its Windows twin.
	CompletionScript        = "kubectl_complete-mesh"
	CompletionScriptWindows = "kubectl_complete-mesh.bat"
	defaultBaseURLFormat    = "https://github.com/kubectl-mesh/kubectl-mesh/releases/download/%s"
)

// semverRE is semantic versioning 2.0 with the leading "v" Krew requires.
var semverRE = regexp.MustCompile(`^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

// ValidateVersion accepts what Krew accepts as spec.version.
func ValidateVersion(v string) error {
	if !semverRE.MatchString(v) {
		return fmt.Errorf("-version %q is not a semantic version with a leading v; pass one like v0.1.0 (make release VERSION=v0.1.0)", v)
	}
	return nil
}

// Platform is one os/arch target of a release.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// Binary is the plugin's file name on the platform.
func (p Platform) Binary() string {
	if p.OS == "windows" {
		return "kubectl-mesh.exe"
	}
	return "kubectl-mesh"
}

// ArchiveName is the file name of the platform's archive: zip on Windows
// (what its users can open without extra tools), tar.gz elsewhere.
func (p Platform) ArchiveName(version string) string {
	ext := ".tar.gz"
	if p.OS == "windows" {
		ext = ".zip"
	}
	return fmt.Sprintf("kubectl-mesh_%s_%s_%s%s", version, p.OS, p.Arch, ext)
}

// DefaultPlatforms are the platforms every release ships.
func DefaultPlatforms() []Platform {
	return []Platform{
		{"linux", "amd64"}, {"linux", "arm64"},
		{"darwin", "amd64"}, {"darwin", "arm64"},
		{"windows", "amd64"},
	}
}

func platformNames(ps []Platform) []string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.String()
	}
	return names
}

// ParsePlatforms reads a comma-separated os/arch list, limited to the
// platforms a release can ship.
func ParsePlatforms(s string) ([]Platform, error) {
	known := DefaultPlatforms()
	var out []Platform
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		osName, arch, ok := strings.Cut(item, "/")
		p := Platform{osName, arch}
		if !ok || !slices.Contains(known, p) {
			return nil, fmt.Errorf("-platforms: %q is not one of %s", item, strings.Join(platformNames(known), ", "))
		}
		if slices.Contains(out, p) {
			return nil, fmt.Errorf("-platforms: %s is listed twice", item)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-platforms is empty; list at least one of %s", strings.Join(platformNames(known), ", "))
	}
	return out, nil
}

// Config says what to build and where.
type Config struct {
	Root      string // repository root
	Dist      string // output directory, replaced as a whole on success
	Version   string
	Commit    string
	BaseURL   string // archives' download location; "" = the GitHub release of Version
	Platforms []Platform
	// Template is the Krew manifest template; "" = <Root>/krew/mesh.yaml.
	Template string
}

// Archive is one built release archive.
type Archive struct {
	Platform   Platform
	Name       string // file name inside Dist
	SHA256     string
	Size       int64
	BinarySize int64
}

// Result is what Build wrote.
type Result struct {
	Archives []Archive
	Manifest *Plugin
}

// Build compiles, packs, sums and renders a release into cfg.Dist. It works
// in a staging directory inside Dist and moves the results in only when
// everything succeeded, so a failed release never leaves a half-written
// release; other files in Dist (the image, rendered deploy manifests) stay.
func Build(ctx context.Context, cfg Config) (*Result, error) {
	if err := ValidateVersion(cfg.Version); err != nil {
		return nil, err
	}
	if len(cfg.Platforms) == 0 {
		cfg.Platforms = DefaultPlatforms()
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = fmt.Sprintf(defaultBaseURLFormat, cfg.Version)
	}
	if cfg.Template == "" {
		cfg.Template = filepath.Join(cfg.Root, "krew", ManifestFile)
	}
	if cfg.Commit == "" {
		cfg.Commit = "unknown"
	}
	tmpl, err := ReadManifest(cfg.Template)
	if err != nil {
		return nil, err
	}
	license, err := os.ReadFile(filepath.Join(cfg.Root, "LICENSE"))
	if err != nil {
		return nil, fmt.Errorf("every archive must carry the LICENSE (Krew requires it): %w", err)
	}
	readme, err := os.ReadFile(filepath.Join(cfg.Root, "README.md"))
	if err != nil {
		return nil, err
	}
	completion, err := os.ReadFile(filepath.Join(cfg.Root, CompletionScript))
	if err != nil {
		return nil, err
	}
	completionBat, err := os.ReadFile(filepath.Join(cfg.Root, "hack", "release", CompletionScriptWindows))
	if err != nil {
		return nil, err
	}

	dist, err := filepath.Abs(cfg.Dist)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return nil, err
	}
	stage, err := os.MkdirTemp(dist, ".release-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)
	binDir := filepath.Join(stage, ".bin")

	res := &Result{}
	for _, p := range cfg.Platforms {
		bin := filepath.Join(binDir, p.OS+"_"+p.Arch, p.Binary())
		if err := goBuild(ctx, cfg, p, bin); err != nil {
			return nil, err
		}
		binData, err := os.ReadFile(bin)
		if err != nil {
			return nil, err
		}
		files := []ArchiveFile{
			{Name: p.Binary(), Mode: 0o755, Data: binData},
			{Name: CompletionScript, Mode: 0o755, Data: completion},
			{Name: "LICENSE", Mode: 0o644, Data: license},
			{Name: "README.md", Mode: 0o644, Data: readme},
		}
		if p.OS == "windows" {
			files = append(files, ArchiveFile{Name: CompletionScriptWindows, Mode: 0o755, Data: completionBat})
		}
		name := p.ArchiveName(cfg.Version)
		var buf bytes.Buffer
		if p.OS == "windows" {
			err = WriteZip(&buf, files)
		} else {
			err = WriteTarGz(&buf, files)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(stage, name), buf.Bytes(), 0o644); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(buf.Bytes())
		res.Archives = append(res.Archives, Archive{
			Platform: p, Name: name, SHA256: hex.EncodeToString(sum[:]),
			Size: int64(buf.Len()), BinarySize: int64(len(binData)),
		})
	}
	if err := os.RemoveAll(binDir); err != nil {
		return nil, err
	}

	var sums bytes.Buffer
	for _, a := range res.Archives {
		fmt.Fprintf(&sums, "%s  %s\n", a.SHA256, a.Name)
	}
	if err := os.WriteFile(filepath.Join(stage, ChecksumsFile), sums.Bytes(), 0o644); err != nil {
		return nil, err
	}
	rendered, err := RenderManifest(tmpl, cfg.Version, cfg.BaseURL, res.Archives)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Template, err)
	}
	if err := WriteManifest(filepath.Join(stage, ManifestFile), rendered); err != nil {
		return nil, err
	}
	res.Manifest = rendered

	if err := publish(stage, dist); err != nil {
		return nil, err
	}
	return res, nil
}

// goBuild cross-compiles the plugin: static (CGO_ENABLED=0), trimmed paths,
// stripped, version and commit stamped.
func goBuild(ctx context.Context, cfg Config, p Platform, out string) error {
	ldflags := fmt.Sprintf("-s -w -X %[1]s/pkg/version.Version=%[2]s -X %[1]s/pkg/version.Commit=%[3]s", modulePath, cfg.Version, cfg.Commit)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, "./cmd/kubectl-mesh")
	cmd.Dir = cfg.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch, "GOFLAGS=-buildvcs=false")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = io.Discard
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/kubectl-mesh for %s: %w: %s", p, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// publish replaces the previous release's files in dist with the staged ones.
func publish(stage, dist string) error {
	old, err := filepath.Glob(filepath.Join(dist, "kubectl-mesh_*"))
	if err != nil {
		return err
	}
	old = append(old, filepath.Join(dist, ChecksumsFile), filepath.Join(dist, ManifestFile))
	for _, f := range old {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	entries, err := os.ReadDir(stage)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if err := os.Rename(filepath.Join(stage, e.Name()), filepath.Join(dist, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
