package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kubectl-mesh/kubectl-mesh/test/lab"
)

type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations"`
}

// ociArchive is an OCI image layout read from a tar, blobs checked against
// their digests.
type ociArchive map[string][]byte

func readOCIArchive(t *testing.T, path string) ociArchive {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := ociArchive{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = b
	}
	return out
}

func (a ociArchive) blob(t *testing.T, digest string, into any) []byte {
	t.Helper()
	hexSum, ok := strings.CutPrefix(digest, "sha256:")
	if !ok {
		t.Fatalf("digest %q is not sha256", digest)
	}
	b, ok := a["blobs/sha256/"+hexSum]
	if !ok {
		t.Fatalf("blob %s missing from the layout", digest)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != hexSum {
		t.Fatalf("blob %s has sha256 %x", digest, sum)
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("blob %s: %v", digest, err)
		}
	}
	return b
}

func TestImage(t *testing.T) {
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	const version = "v0.0.0-imagetest"
	out := filepath.Join(t.TempDir(), "image.tar")
	cmd := exec.CommandContext(t.Context(), "make", "--no-print-directory", "image", "VERSION="+version, "IMAGE_TAR="+out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, b)
	}
	a := readOCIArchive(t, out)
	if !strings.Contains(string(a["oci-layout"]), `"imageLayoutVersion"`) {
		t.Fatalf("no oci-layout file in %s: %v", out, a["oci-layout"])
	}
	var index struct{ Manifests []ociDescriptor }
	if err := json.Unmarshal(a["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, a["index.json"])
	}
	if ref := index.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; ref != "ghcr.io/kubectl-mesh/mesh-webhook:"+version {
		t.Fatalf("image is tagged %q, want the repository of the deploy manifests and the version", ref)
	}
	var manifest struct {
		MediaType string
		Config    ociDescriptor
		Layers    []ociDescriptor
	}
	a.blob(t, index.Manifests[0].Digest, &manifest)
	if manifest.MediaType != "application/vnd.oci.image.manifest.v1+json" || manifest.Config.MediaType != "application/vnd.oci.image.config.v1+json" {
		t.Fatalf("not an OCI image manifest: %+v", manifest)
	}
	var config struct {
		OS, Architecture string
		Config           struct {
			User       string
			Entrypoint []string
			Labels     map[string]string
		}
	}
	a.blob(t, manifest.Config.Digest, &config)
	uid, _, _ := strings.Cut(config.Config.User, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Fatalf("image runs as user %q, want a numeric non-root uid (a Pod's runAsNonRoot can only check numeric users)", config.Config.User)
	}
	if !slices.Equal(config.Config.Entrypoint, []string{"/mesh-webhook"}) || config.OS != "linux" || config.Architecture != "amd64" {
		t.Fatalf("config = %+v, want linux/amd64 running /mesh-webhook", config)
	}
	if config.Config.Labels["org.opencontainers.image.version"] != version {
		t.Fatalf("labels = %v, want the version", config.Config.Labels)
	}

	// The single layer is the whole file system: the binary, static, and
	// the user the config names.
	if len(manifest.Layers) != 1 {
		t.Fatalf("want one layer on an empty base, got %d", len(manifest.Layers))
	}
	gz, err := gzip.NewReader(bytes.NewReader(a.blob(t, manifest.Layers[0].Digest, nil)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*tar.Header{}
	contents := map[string][]byte{}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name], contents[hdr.Name] = hdr, b
	}
	bin, ok := files["mesh-webhook"]
	if !ok || bin.Mode&0o111 == 0 {
		t.Fatalf("layer lacks an executable /mesh-webhook: %v", bin)
	}
	ef, err := elf.NewFile(bytes.NewReader(contents["mesh-webhook"]))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("/mesh-webhook is dynamically linked; the image has no libc")
		}
	}
	if !strings.Contains(string(contents["etc/passwd"]), ":"+uid+":") {
		t.Fatalf("/etc/passwd has no user %s:\n%s", uid, contents["etc/passwd"])
	}
	for name := range files {
		if strings.HasPrefix(name, "bin/") || name == "bin/sh" || strings.HasPrefix(name, "lib") {
			t.Errorf("distroless image holds %s", name)
		}
	}
}
