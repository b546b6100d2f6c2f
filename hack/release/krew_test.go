package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The tests below build a real (host-platform) release and check it with
// Krew's own programs, which `make krew-tools` builds into bin/.

const testVersion = "v0.1.0"

var (
	releaseOnce sync.Once
	releaseDir  string
	releaseErr  error
)

// hostRelease builds the host's archive once per test binary, from a copy
// of the template that keeps only the host's platform (building all five
// takes minutes; `make release` does that).
func hostRelease(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a release and runs Krew; skipped in -short mode")
	}
	if hostPlatform() != (Platform{"linux", "amd64"}) && hostPlatform() != (Platform{"linux", "arm64"}) {
		t.Skipf("Krew install checks need a linux host, not %s", hostPlatform())
	}
	releaseOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			releaseErr = err
			return
		}
		dir, err := os.MkdirTemp("", "release-test-")
		if err != nil {
			releaseErr = err
			return
		}
		releaseDir = dir
		tmpl, err := ReadManifest(filepath.Join(root, "krew", ManifestFile))
		if err != nil {
			releaseErr = err
			return
		}
		var keep []PluginPlatform
		for _, pp := range tmpl.Spec.Platforms {
			if p, err := platformOf(pp); err == nil && p == hostPlatform() {
				keep = append(keep, pp)
			}
		}
		tmpl.Spec.Platforms = keep
		tmplPath := filepath.Join(dir, "template.yaml")
		if releaseErr = WriteManifest(tmplPath, tmpl); releaseErr != nil {
			return
		}
		_, releaseErr = Build(context.Background(), Config{
			Root: root, Dist: filepath.Join(dir, "dist"), Version: testVersion, Commit: "test",
			BaseURL: "https://example.com/releases/" + testVersion, Platforms: []Platform{hostPlatform()}, Template: tmplPath,
		})
	})
	if releaseErr != nil {
		t.Fatal(releaseErr)
	}
	return filepath.Join(releaseDir, "dist")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if releaseDir != "" {
		os.RemoveAll(releaseDir)
	}
	os.Exit(code)
}

func testValidator(t *testing.T) Validator {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	v := Validator{
		Krew:              filepath.Join(root, "bin", "krew"),
		ManifestValidator: filepath.Join(root, "bin", "validate-krew-manifest"),
		Kubectl:           filepath.Join(root, "bin", "kubectl"),
	}
	for _, p := range []string{v.Krew, v.ManifestValidator, v.Kubectl} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing; run make test-deps (krew-tools and tools)", p)
		}
	}
	return v
}

// copyDist copies a release so a test can break it without touching the
// shared one.
func copyDist(t *testing.T, dist string) string {
	t.Helper()
	out := t.TempDir()
	entries, err := os.ReadDir(dist)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dist, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestReleaseInstallsWithKrew(t *testing.T) {
	dist := hostRelease(t)
	v := testValidator(t)
	var log strings.Builder
	v.Out = &log
	if err := v.ValidateDist(t.Context(), dist); err != nil {
		t.Fatal(err)
	}
	// ValidateDist checks the version itself; the log shows it came from
	// kubectl's plugin discovery of the Krew-installed binary.
	if !strings.Contains(log.String(), "kubectl mesh version (installed by krew from kubectl-mesh_"+testVersion+"_linux_") ||
		!strings.Contains(log.String(), "): "+testVersion) {
		t.Fatalf("validation did not run the installed plugin:\n%s", log.String())
	}
	files, err := os.ReadDir(dist)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name())
	}
	archive := hostPlatform().ArchiveName(testVersion)
	if strings.Join(names, " ") != strings.Join([]string{ChecksumsFile, archive, ManifestFile}, " ") {
		t.Fatalf("dist holds %v, want checksums, the archive and the manifest only", names)
	}
	b, err := os.ReadFile(filepath.Join(dist, archive))
	if err != nil {
		t.Fatal(err)
	}
	content, err := ReadArchive(archive, b)
	if err != nil {
		t.Fatal(err)
	}
	var inArchive []string
	for _, f := range content {
		inArchive = append(inArchive, f.Name)
	}
	if strings.Join(inArchive, " ") != "kubectl-mesh kubectl_complete-mesh LICENSE README.md" {
		t.Fatalf("%s holds %v", archive, inArchive)
	}
}

func TestBrokenManifestsAreRejected(t *testing.T) {
	dist := hostRelease(t)
	v := testValidator(t)
	const otherSum = "1111111111111111111111111111111111111111111111111111111111111111"
	tests := map[string]struct {
		mutate  func(*Plugin)
		wantErr string
	}{
		"wrong sha256": {
			mutate:  func(p *Plugin) { p.Spec.Platforms[0].SHA256 = otherSum },
			wantErr: "sha256",
		},
		"duplicate selector": {
			mutate: func(p *Plugin) {
				dup := p.Spec.Platforms[0]
				dup.Selector = &Selector{MatchLabels: map[string]string{"os": hostPlatform().OS}}
				p.Spec.Platforms = append(p.Spec.Platforms, dup)
			},
			wantErr: "overlapping",
		},
		"missing bin": {
			mutate:  func(p *Plugin) { p.Spec.Platforms[0].Bin = "" },
			wantErr: "`bin` has to be set",
		},
		"not semver": {
			mutate:  func(p *Plugin) { p.Spec.Version = "0.1" },
			wantErr: "version",
		},
		"multi-line shortDescription": {
			mutate:  func(p *Plugin) { p.Spec.ShortDescription += "\nsecond line" },
			wantErr: "line breaks",
		},
		"unsupported selector key": {
			mutate:  func(p *Plugin) { p.Spec.Platforms[0].Selector.MatchLabels["distro"] = "debian" },
			wantErr: `key "distro" not supported`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			broken := copyDist(t, dist)
			path := filepath.Join(broken, ManifestFile)
			m, err := ReadManifest(path)
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(m)
			if err := WriteManifest(path, m); err != nil {
				t.Fatal(err)
			}
			err = v.ValidateDist(t.Context(), broken)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ValidateDist of a manifest with %s: error = %v, want one mentioning %q", name, err, tc.wantErr)
			}
		})
	}

	// Krew itself refuses an archive whose sha256 differs from the
	// manifest's, independently of ValidateDist's own comparison.
	t.Run("krew install with wrong sha256", func(t *testing.T) {
		broken := copyDist(t, dist)
		path := filepath.Join(broken, ManifestFile)
		m, err := ReadManifest(path)
		if err != nil {
			t.Fatal(err)
		}
		m.Spec.Platforms[0].SHA256 = otherSum
		if err := WriteManifest(path, m); err != nil {
			t.Fatal(err)
		}
		err = v.InstallAndRun(t.Context(), path, filepath.Join(broken, hostPlatform().ArchiveName(testVersion)), hostPlatform(), testVersion)
		if err == nil || !strings.Contains(err.Error(), "krew install") || !strings.Contains(err.Error(), otherSum) {
			t.Fatalf("krew install accepted a wrong sha256: %v", err)
		}
	})

	t.Run("checksums.txt out of date", func(t *testing.T) {
		broken := copyDist(t, dist)
		archive := hostPlatform().ArchiveName(testVersion)
		if err := os.WriteFile(filepath.Join(broken, ChecksumsFile), []byte(otherSum+"  "+archive+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := v.ValidateDist(t.Context(), broken)
		if err == nil || !strings.Contains(err.Error(), ChecksumsFile) {
			t.Fatalf("ValidateDist accepted a wrong checksums.txt: %v", err)
		}
	})
}
