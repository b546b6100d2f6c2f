package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// Validator checks a rendered release with Krew's own tools.
type Validator struct {
	Krew              string // the krew binary (sigs.k8s.io/krew/cmd/krew)
	ManifestValidator string // sigs.k8s.io/krew/cmd/validate-krew-manifest
	Kubectl           string // a real kubectl for plugin discovery
	Out               io.Writer
}

func (v Validator) logf(format string, args ...any) {
	if v.Out != nil {
		fmt.Fprintf(v.Out, format+"\n", args...)
	}
}

// ValidateDist checks everything `make release` wrote to dist: Krew's
// validator accepts the manifest, every sha256 in it and in checksums.txt
// is the sha256 of the archive its uri names, every archive holds the
// manifest's bin and files plus LICENSE, and Krew installs each linux
// archive; the host's one must then answer `kubectl mesh version` through
// kubectl's plugin discovery with the manifest's version.
func (v Validator) ValidateDist(ctx context.Context, dist string) error {
	manifestPath := filepath.Join(dist, ManifestFile)
	m, err := ReadManifest(manifestPath)
	if err != nil {
		return fmt.Errorf("%w; run make release first", err)
	}
	if err := v.RunManifestValidator(ctx, manifestPath); err != nil {
		return err
	}
	v.logf("krew validate-krew-manifest: %s OK", manifestPath)
	sums, err := readChecksums(filepath.Join(dist, ChecksumsFile))
	if err != nil {
		return err
	}
	for i, pp := range m.Spec.Platforms {
		name, err := v.checkArchive(dist, i, pp, sums)
		if err != nil {
			return err
		}
		delete(sums, name)
		p, err := platformOf(pp)
		if err != nil {
			return fmt.Errorf("spec.platforms[%d]: %w", i, err)
		}
		if p.OS != "linux" {
			continue
		}
		if err := v.InstallAndRun(ctx, manifestPath, filepath.Join(dist, name), p, m.Spec.Version); err != nil {
			return err
		}
	}
	for name := range sums {
		return fmt.Errorf("%s lists %s, which no platform of %s uses; re-run make release", ChecksumsFile, name, ManifestFile)
	}
	return nil
}

// RunManifestValidator runs Krew's validate-krew-manifest. Its install step
// downloads every uri, so it is skipped; InstallAndRun installs from the
// local archives instead.
func (v Validator) RunManifestValidator(ctx context.Context, manifestPath string) error {
	if _, err := os.Stat(v.ManifestValidator); err != nil {
		return fmt.Errorf("krew's validate-krew-manifest not found at %s; run make krew-tools", v.ManifestValidator)
	}
	cmd := exec.CommandContext(ctx, v.ManifestValidator, "-manifest", manifestPath, "-skip-install")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("krew's validate-krew-manifest rejects %s: %w:\n%s", manifestPath, err, out)
	}
	return nil
}

func (v Validator) checkArchive(dist string, i int, pp PluginPlatform, sums map[string]string) (string, error) {
	field := fmt.Sprintf("%s: spec.platforms[%d]", ManifestFile, i)
	name := path.Base(pp.URI)
	data, err := os.ReadFile(filepath.Join(dist, name))
	if err != nil {
		return "", fmt.Errorf("%s.uri names %s, which is not in %s: %w", field, name, dist, err)
	}
	sum := sha256.Sum256(data)
	got := hex.EncodeToString(sum[:])
	if pp.SHA256 != got {
		return "", fmt.Errorf("%s.sha256 is %s, but %s has sha256 %s; re-run make release", field, pp.SHA256, name, got)
	}
	if sums[name] != got {
		return "", fmt.Errorf("%s has sha256 %s for %s, but the archive has %s; re-run make release", ChecksumsFile, sums[name], name, got)
	}
	files, err := ReadArchive(name, data)
	if err != nil {
		return "", err
	}
	has := func(pattern string) bool {
		for _, f := range files {
			if ok, _ := path.Match(pattern, f.Name); ok {
				return true
			}
		}
		return false
	}
	for _, want := range []string{pp.Bin, "LICENSE", CompletionScript} {
		if !has(want) {
			return "", fmt.Errorf("%s: %s lacks %s", field, name, want)
		}
	}
	for j, fo := range pp.Files {
		if !has(fo.From) {
			return "", fmt.Errorf("%s.files[%d].from %q matches nothing in %s", field, j, fo.From, name)
		}
	}
	return name, nil
}

func readChecksums(p string) (map[string]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%w; run make release first", err)
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != sha256.Size*2 {
			return nil, fmt.Errorf("%s:%d: want \"<sha256>  <file>\", got %q", p, n, sc.Text())
		}
		sums[name] = sum
	}
	return sums, sc.Err()
}

// InstallAndRun installs one archive with Krew (`krew install --manifest
// --archive`, which checks the sha256, unpacks into a fresh KREW_ROOT and
// links bin into KREW_ROOT/bin) and checks the installed plugin. On the
// host's platform kubectl must find it by plugin discovery and it must
// report the manifest's version; other architectures are checked by their
// ELF header.
func (v Validator) InstallAndRun(ctx context.Context, manifestPath, archivePath string, p Platform, version string) error {
	if _, err := os.Stat(v.Krew); err != nil {
		return fmt.Errorf("krew not found at %s; run make krew-tools", v.Krew)
	}
	root, err := os.MkdirTemp("", "krew-root-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	cmd := exec.CommandContext(ctx, v.Krew, "install", "--manifest="+manifestPath, "--archive="+archivePath)
	cmd.Env = append(os.Environ(), "KREW_ROOT="+root, "KREW_OS="+p.OS, "KREW_ARCH="+p.Arch, "HOME="+root)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("krew install of %s (%s) failed: %w:\n%s", filepath.Base(archivePath), p, err, out)
	}
	link := filepath.Join(root, "bin", p.Binary())
	target, err := filepath.EvalSymlinks(link)
	if err != nil {
		return fmt.Errorf("krew installed %s but did not link %s: %w", filepath.Base(archivePath), link, err)
	}
	v.logf("krew install %s: %s -> %s", filepath.Base(archivePath), link, target)
	if p != hostPlatform() {
		return checkELF(target, p)
	}
	got, err := v.PluginVersion(ctx, filepath.Join(root, "bin"))
	if err != nil {
		return err
	}
	if got != version {
		return fmt.Errorf("kubectl mesh version from %s reports %q, want the release version %q", filepath.Base(archivePath), got, version)
	}
	v.logf("kubectl mesh version (installed by krew from %s): %s", filepath.Base(archivePath), got)
	return nil
}

// PluginVersion runs `kubectl mesh version -o json` with only pluginDir and
// a private copy of kubectl's directory on PATH, so the plugin kubectl
// discovers can only be the one in pluginDir.
func (v Validator) PluginVersion(ctx context.Context, pluginDir string) (string, error) {
	kubectl, err := filepath.Abs(v.Kubectl)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(kubectl); err != nil {
		return "", fmt.Errorf("kubectl not found at %s; run make tools", kubectl)
	}
	kdir, err := os.MkdirTemp("", "kubectl-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(kdir)
	if err := os.Symlink(kubectl, filepath.Join(kdir, "kubectl")); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(kdir, "kubectl"), "mesh", "version", "-o", "json")
	cmd.Env = append(os.Environ(), "PATH="+pluginDir+string(os.PathListSeparator)+kdir, "KUBECONFIG="+os.DevNull)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("kubectl mesh version (plugin from %s): %w: %s", pluginDir, err, stderr.String())
	}
	var info struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("kubectl mesh version -o json printed %q: %w", out, err)
	}
	return info.Version, nil
}

var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

func checkELF(file string, p Platform) error {
	f, err := elf.Open(file)
	if err != nil {
		return fmt.Errorf("installed %s is not an ELF executable: %w", file, err)
	}
	defer f.Close()
	want, ok := elfMachine[p.Arch]
	if !ok {
		return errors.New("no ELF machine known for " + p.Arch)
	}
	if f.Machine != want {
		return fmt.Errorf("installed %s is built for %s, want %s (%s)", file, f.Machine, want, p)
	}
	return nil
}
