package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestValidateVersion(t *testing.T) {
	tests := map[string]struct {
		version string
		ok      bool
	}{
		"release":          {"v0.1.0", true},
		"pre-release":      {"v1.2.3-rc.1", true},
		"build metadata":   {"v1.2.3+linux.1", true},
		"no v":             {"0.1.0", false},
		"two parts":        {"v0.1", false},
		"leading zero":     {"v01.1.0", false},
		"git describe":     {"52e2871-dirty", false},
		"empty":            {"", false},
		"empty prerelease": {"v1.0.0-", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := ValidateVersion(tc.version)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateVersion(%q) = %v, want ok=%v", tc.version, err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "-version") {
				t.Fatalf("error does not name the flag: %v", err)
			}
		})
	}
}

func TestParsePlatforms(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    []Platform
		wantErr string
	}{
		"all":        {in: "linux/amd64,linux/arm64,darwin/amd64,darwin/arm64,windows/amd64", want: DefaultPlatforms()},
		"one":        {in: " linux/arm64 ", want: []Platform{{"linux", "arm64"}}},
		"unknown":    {in: "plan9/amd64", wantErr: `"plan9/amd64" is not one of`},
		"no slash":   {in: "linux", wantErr: `"linux" is not one of`},
		"duplicated": {in: "linux/amd64,linux/amd64", wantErr: "listed twice"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParsePlatforms(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParsePlatforms(%q) error = %v, want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("ParsePlatforms(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestArchiveRoundTrip(t *testing.T) {
	files := []ArchiveFile{
		{Name: "kubectl-mesh", Mode: 0o755, Data: []byte("\x7fELF binary")},
		{Name: "LICENSE", Mode: 0o644, Data: []byte("Apache-2.0")},
	}
	tests := map[string]struct {
		name  string
		write func(*bytes.Buffer, []ArchiveFile) error
	}{
		"tar.gz": {"a.tar.gz", func(b *bytes.Buffer, f []ArchiveFile) error { return WriteTarGz(b, f) }},
		"zip":    {"a.zip", func(b *bytes.Buffer, f []ArchiveFile) error { return WriteZip(b, f) }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var first, second bytes.Buffer
			if err := tc.write(&first, files); err != nil {
				t.Fatal(err)
			}
			if err := tc.write(&second, files); err != nil {
				t.Fatal(err)
			}
			// The manifest's sha256 must not depend on when the release ran.
			if !bytes.Equal(first.Bytes(), second.Bytes()) {
				t.Fatal("two archives of the same files differ")
			}
			got, err := ReadArchive(tc.name, first.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(files) {
				t.Fatalf("read %d files, want %d", len(got), len(files))
			}
			for i := range files {
				if got[i].Name != files[i].Name || got[i].Mode != files[i].Mode || !bytes.Equal(got[i].Data, files[i].Data) {
					t.Errorf("file %d = %s %v %q, want %s %v %q", i, got[i].Name, got[i].Mode, got[i].Data, files[i].Name, files[i].Mode, files[i].Data)
				}
			}
		})
	}
}

// template reads the repository's Krew manifest template.
func template(t *testing.T) *Plugin {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ReadManifest(filepath.Join(root, "krew", ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func fakeArchives(ps []Platform) []Archive {
	var out []Archive
	for i, p := range ps {
		sum := sha256.Sum256([]byte{byte(i)})
		out = append(out, Archive{Platform: p, Name: p.ArchiveName("v0.1.0"), SHA256: hex.EncodeToString(sum[:])})
	}
	return out
}

func TestRenderManifest(t *testing.T) {
	archives := fakeArchives(DefaultPlatforms())
	got, err := RenderManifest(template(t), "v0.1.0", "https://example.com/dl/v0.1.0/", archives)
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Version != "v0.1.0" || got.Metadata.Name != "mesh" || len(got.Spec.Platforms) != len(archives) {
		t.Fatalf("rendered %+v", got)
	}
	for i, pp := range got.Spec.Platforms {
		p, err := platformOf(pp)
		if err != nil {
			t.Fatal(err)
		}
		a := archives[slices.IndexFunc(archives, func(a Archive) bool { return a.Platform == p })]
		if pp.URI != "https://example.com/dl/v0.1.0/"+a.Name || pp.SHA256 != a.SHA256 || pp.Bin != p.Binary() {
			t.Errorf("platforms[%d] (%s) = %s %s %s, want the uri, sum and bin of %s", i, p, pp.URI, pp.SHA256, pp.Bin, a.Name)
		}
	}
	if strings.ContainsAny(got.Spec.ShortDescription, "\r\n") || len(got.Spec.Description) < 100 {
		t.Errorf("shortDescription must be one line and description must say what the plugin does: %+v", got.Spec)
	}

	tests := map[string]struct {
		mutate   func(*Plugin)
		archives []Archive
		baseURL  string
		wantErr  string
	}{
		"platform without archive": {archives: archives[:4], wantErr: "windows/amd64, but no archive was built"},
		"archive without platform": {
			mutate:  func(p *Plugin) { p.Spec.Platforms = p.Spec.Platforms[:4] },
			wantErr: "has no platform entry",
		},
		"duplicate selector": {
			mutate:  func(p *Plugin) { p.Spec.Platforms = append(p.Spec.Platforms, p.Spec.Platforms[0]) },
			wantErr: "a second time",
		},
		"windows bin without .exe": {
			mutate:  func(p *Plugin) { p.Spec.Platforms[4].Bin = "kubectl-mesh" },
			wantErr: `set bin to "kubectl-mesh.exe"`,
		},
		"selector by expression": {
			mutate: func(p *Plugin) {
				p.Spec.Platforms[0].Selector = &Selector{MatchExpressions: []SelectorExpr{{Key: "os", Operator: "In", Values: []string{"linux"}}}}
			},
			wantErr: "exactly os and arch",
		},
		"relative base URL": {baseURL: "dl/v0.1.0", wantErr: "-base-url"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tmpl := template(t)
			if tc.mutate != nil {
				tc.mutate(tmpl)
			}
			as := tc.archives
			if as == nil {
				as = archives
			}
			base := tc.baseURL
			if base == "" {
				base = "https://example.com/dl"
			}
			_, err := RenderManifest(tmpl, "v0.1.0", base, as)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("RenderManifest error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestReadManifestStrict(t *testing.T) {
	path := filepath.Join(t.TempDir(), ManifestFile)
	if err := os.WriteFile(path, []byte("apiVersion: krew.googlecontainertools.github.com/v1alpha2\nkind: Plugin\nmetadata: {name: mesh}\nspec:\n  version: v0.1.0\n  sha265: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadManifest(path); err == nil || !strings.Contains(err.Error(), "sha265") {
		t.Fatalf("ReadManifest accepted an unknown field: %v", err)
	}
}
