// Command image builds the mesh-webhook container image without a Docker
// daemon: one layer on an empty (scratch) base holding the static binary,
// an /etc/passwd and /etc/group with the non-root user 65532, the host's CA
// bundle when it has one, and a writable /tmp — what distroless/static
// provides, built here from nothing. The image is written as an OCI image
// layout packed in a tar (an "oci-archive"), which `podman load`,
// `skopeo copy oci-archive:…` and `docker load` (25+) read.
//
// It is its own module so go-containerregistry never enters the product's
// go.mod. The Dockerfile at the repository root builds the same image with
// Docker.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// NonRootUID is distroless's "nonroot" user and group.
	NonRootUID = 65532
	entrypoint = "/mesh-webhook"
	caBundle   = "/etc/ssl/certs/ca-certificates.crt"
)

// epoch is every file's and the image's creation time, so the same binary
// gives the same image digest.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

// Options say what to build.
type Options struct {
	Binary  string // static linux mesh-webhook
	Arch    string
	Ref     string // repository:tag recorded in the layout's index
	Version string
	CACerts string // CA bundle to include; "" = none
	Out     string // the oci-archive to write
}

func run(_ context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(out)
	var o Options
	fs.StringVar(&o.Binary, "binary", "", "statically linked linux mesh-webhook binary (required)")
	fs.StringVar(&o.Arch, "arch", "amd64", "architecture the binary was built for")
	fs.StringVar(&o.Ref, "image", "ghcr.io/kubectl-mesh/mesh-webhook:v0.0.0-dev", "image reference (repository:tag) to record")
	fs.StringVar(&o.Version, "version", "v0.0.0-dev", "version for the image's labels")
	fs.StringVar(&o.CACerts, "ca-certs", caBundle, "CA bundle to include at "+caBundle+` ("" for none; skipped when missing)`)
	fs.StringVar(&o.Out, "out", "", "OCI archive to write (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Binary == "" || o.Out == "" {
		return errors.New("-binary and -out are required")
	}
	digest, err := Build(o)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s: %s %s\n", o.Out, o.Ref, digest)
	return nil
}

// Build writes the image and returns its manifest digest.
func Build(o Options) (v1.Hash, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := checkStatic(o.Binary); err != nil {
		return v1.Hash{}, err
	}
	files := []file{
		{name: "etc/", mode: fs.ModeDir | 0o755},
		{name: "etc/passwd", mode: 0o644, data: fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRootUID, NonRootUID)},
		{name: "etc/group", mode: 0o644, data: fmt.Appendf(nil, "root:x:0:\nnonroot:x:%d:\n", NonRootUID)},
		{name: "home/", mode: fs.ModeDir | 0o755},
		{name: "home/nonroot/", mode: fs.ModeDir | 0o700, uid: NonRootUID},
		{name: "tmp/", mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{name: strings.TrimPrefix(entrypoint, "/"), mode: 0o755, data: bin},
	}
	env := []string{"PATH=/"}
	if o.CACerts != "" {
		if ca, err := os.ReadFile(o.CACerts); err == nil {
			files = append(files,
				file{name: "etc/ssl/", mode: fs.ModeDir | 0o755},
				file{name: "etc/ssl/certs/", mode: fs.ModeDir | 0o755},
				file{name: strings.TrimPrefix(caBundle, "/"), mode: 0o644, data: ca})
			env = append(env, "SSL_CERT_FILE="+caBundle)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return v1.Hash{}, err
		}
	}
	layerTar, err := tarFiles(files)
	if err != nil {
		return v1.Hash{}, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return v1.Hash{}, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "hack/image: mesh-webhook, passwd, group, CA bundle"}})
	if err != nil {
		return v1.Hash{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return v1.Hash{}, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", o.Arch, v1.Time{Time: epoch}
	cf.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", NonRootUID, NonRootUID),
		Entrypoint:   []string{entrypoint},
		WorkingDir:   "/",
		Env:          env,
		ExposedPorts: map[string]struct{}{"9443/tcp": {}, "8080/tcp": {}, "8081/tcp": {}},
		Labels: map[string]string{
			"org.opencontainers.image.title":    "mesh-webhook",
			"org.opencontainers.image.version":  o.Version,
			"org.opencontainers.image.source":   "https://github.com/kubectl-mesh/kubectl-mesh",
			"org.opencontainers.image.licenses": "Apache-2.0",
		},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	return digest, writeOCIArchive(o.Out, img, o.Ref)
}

// checkStatic refuses a dynamically linked binary: the image has no libc.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("-binary %s is not a linux ELF executable: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("-binary %s is dynamically linked; build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}

type file struct {
	name string
	mode fs.FileMode
	uid  int
	data []byte
}

func tarFiles(files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: int64(f.mode.Perm()), ModTime: epoch, Uid: f.uid, Gid: f.uid, Format: tar.FormatPAX}
		if f.mode&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		if f.mode.IsDir() {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeOCIArchive writes img as an OCI image layout, tagged ref, and packs
// the layout directory into the tar at out.
func writeOCIArchive(out string, img v1.Image, ref string) error {
	dir, err := os.MkdirTemp("", "mesh-webhook-oci-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref,
		"io.containerd.image.name":          ref,
	})); err != nil {
		return err
	}
	var paths []string
	if err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir {
			paths = append(paths, path)
		}
		return nil
	}); err != nil {
		return err
	}
	slices.Sort(paths)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(f)
	for _, path := range paths {
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		info, err := os.Stat(path)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: epoch, Mode: 0o644, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if info.IsDir() {
			hdr.Name, hdr.Mode, hdr.Typeflag = hdr.Name+"/", 0o755, tar.TypeDir
		} else {
			hdr.Size = info.Size()
		}
		if err := tw.WriteHeader(hdr); err != nil {
			f.Close()
			return err
		}
		if !info.IsDir() {
			b, err := os.ReadFile(path)
			if err != nil {
				f.Close()
				return err
			}
			if _, err := tw.Write(b); err != nil {
				f.Close()
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
