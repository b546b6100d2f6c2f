// Command release produces kubectl-mesh's release artefacts and checks them:
//
//	release build    -version v0.1.0 [-base-url URL] [-dist dist]
//	release validate [-dist dist]
//	release deploy   -version v0.1.0 [-dist dist]
//	release figures  [-dist dist] [-runs 11]
//
// build cross-compiles kubectl-mesh for every platform, packs one archive per
// platform with LICENSE, README.md and the completion helper, writes
// checksums.txt and renders the Krew manifest krew/mesh.yaml into dist/ with
// the archives' real sha256. validate checks dist/ with Krew's own manifest
// validator and installs each linux archive with Krew itself. deploy renders
// the webhook's kustomize overlays with the image of a version. figures
// prints archive and binary sizes and the plugin's cold-start time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

const usage = "usage: release build|validate|deploy|figures [flags]; run `release <command> -h` for the flags"

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("release "+args[0], flag.ContinueOnError)
	fs.SetOutput(out)
	dist := fs.String("dist", filepath.Join(root, "dist"), "output directory")
	switch args[0] {
	case "build":
		cfg := Config{Root: root}
		fs.StringVar(&cfg.Version, "version", "", "release version, a semantic version with a leading v (required)")
		fs.StringVar(&cfg.Commit, "commit", "unknown", "commit stamped into the binaries")
		fs.StringVar(&cfg.BaseURL, "base-url", "", "URL the archives are published under; defaults to the GitHub release of -version")
		platforms := fs.String("platforms", strings.Join(platformNames(DefaultPlatforms()), ","), "comma-separated os/arch list")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		cfg.Dist = *dist
		ps, err := ParsePlatforms(*platforms)
		if err != nil {
			return err
		}
		cfg.Platforms = ps
		res, err := Build(ctx, cfg)
		if err != nil {
			return err
		}
		for _, a := range res.Archives {
			fmt.Fprintf(out, "%s  %s (%d bytes, binary %d bytes)\n", a.SHA256, a.Name, a.Size, a.BinarySize)
		}
		fmt.Fprintf(out, "wrote %s and %s\n", filepath.Join(cfg.Dist, ChecksumsFile), filepath.Join(cfg.Dist, ManifestFile))
		return nil
	case "validate":
		v := Validator{}
		fs.StringVar(&v.Krew, "krew", filepath.Join(root, "bin", "krew"), "Krew binary")
		fs.StringVar(&v.ManifestValidator, "manifest-validator", filepath.Join(root, "bin", "validate-krew-manifest"), "Krew's validate-krew-manifest binary")
		fs.StringVar(&v.Kubectl, "kubectl", filepath.Join(root, "bin", "kubectl"), "kubectl binary used for plugin discovery")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		v.Out = out
		return v.ValidateDist(ctx, *dist)
	case "figures":
		var kubectl string
		var runs int
		fs.StringVar(&kubectl, "kubectl", filepath.Join(root, "bin", "kubectl"), "kubectl binary for the plugin-discovery timing")
		fs.IntVar(&runs, "runs", 11, "runs per timing; the median is printed")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return Figures(ctx, *dist, kubectl, runs, out)
	case "deploy":
		var version, image, kubectl string
		fs.StringVar(&version, "version", "", "release version whose image the manifests reference (required)")
		fs.StringVar(&image, "image", DefaultImage, "webhook image repository")
		fs.StringVar(&kubectl, "kubectl", filepath.Join(root, "bin", "kubectl"), "kubectl binary (its built-in kustomize renders the overlays)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		files, err := RenderDeploy(ctx, DeployConfig{Root: root, Dist: *dist, Version: version, Image: image, Kubectl: kubectl})
		if err != nil {
			return err
		}
		for _, f := range files {
			fmt.Fprintln(out, "wrote", f)
		}
		return nil
	default:
		return fmt.Errorf("unknown command %q; %s", args[0], usage)
	}
}

// repoRoot walks up from the working directory to the product's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module "+modulePath+"\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("not inside the kubectl-mesh repository (no go.mod of %s above the working directory); run from the repository", modulePath)
		}
		dir = parent
	}
}

func hostPlatform() Platform { return Platform{OS: runtime.GOOS, Arch: runtime.GOARCH} }
