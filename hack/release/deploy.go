package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// DefaultImage is the webhook image repository the manifests reference.
const DefaultImage = "ghcr.io/kubectl-mesh/mesh-webhook"

// DeployConfig says which webhook manifests to render for which version.
type DeployConfig struct {
	Root    string // repository root; overlays are <Root>/deploy/webhook/overlays/*
	Dist    string // output goes to <Dist>/deploy/mesh-webhook-<overlay>.yaml
	Version string
	Image   string // repository without tag
	Kubectl string // kubectl, whose built-in kustomize renders
}

// kustomization is the part of kustomize's Kustomization this needs.
type kustomization struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Resources  []string         `json:"resources"`
	Images     []kustomizeImage `json:"images"`
}

type kustomizeImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag"`
}

// RenderDeploy renders every webhook overlay with the image of the release
// version. The overlays stay untouched: a throw-away kustomization that
// uses the overlay as its resource sets the tag, the way a user pins a
// version on top of the published manifests.
func RenderDeploy(ctx context.Context, cfg DeployConfig) ([]string, error) {
	if err := ValidateVersion(cfg.Version); err != nil {
		return nil, err
	}
	if cfg.Image == "" {
		cfg.Image = DefaultImage
	}
	if strings.Contains(cfg.Image, "@") || strings.Contains(filepath.Base(cfg.Image), ":") {
		return nil, fmt.Errorf("-image %q must be a repository without tag or digest; the tag is -version", cfg.Image)
	}
	overlays, err := filepath.Glob(filepath.Join(cfg.Root, "deploy", "webhook", "overlays", "*", "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	if len(overlays) == 0 {
		return nil, fmt.Errorf("no kustomize overlays under %s", filepath.Join(cfg.Root, "deploy", "webhook", "overlays"))
	}
	outDir := filepath.Join(cfg.Dist, "deploy")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(cfg.Dist, ".deploy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	rendered := map[string][]byte{}
	var names []string
	for _, k := range overlays {
		overlay := filepath.Dir(k)
		name := filepath.Base(overlay)
		b, err := RenderOverlay(ctx, cfg, overlay, filepath.Join(work, name))
		if err != nil {
			return nil, err
		}
		rendered[name] = b
		names = append(names, name)
	}
	// Written only once every overlay rendered.
	var files []string
	for _, name := range names {
		f := filepath.Join(outDir, "mesh-webhook-"+name+".yaml")
		if err := os.WriteFile(f, rendered[name], 0o644); err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// RenderOverlay renders one overlay with the version's image, using dir as
// scratch space.
func RenderOverlay(ctx context.Context, cfg DeployConfig, overlay, dir string) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(dir, overlay)
	if err != nil {
		return nil, err
	}
	img := kustomizeImage{Name: DefaultImage, NewTag: cfg.Version}
	if cfg.Image != DefaultImage {
		img.NewName = cfg.Image
	}
	k, err := yaml.Marshal(kustomization{
		APIVersion: "kustomize.config.k8s.io/v1beta1", Kind: "Kustomization",
		Resources: []string{filepath.ToSlash(rel)}, Images: []kustomizeImage{img},
	})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), k, 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, cfg.Kubectl, "kustomize", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("kubectl kustomize %s: %w: %s", overlay, err, stderr.String())
	}
	want := cfg.Image + ":" + cfg.Version
	if !bytes.Contains(out, []byte("image: "+want+"\n")) {
		return nil, fmt.Errorf("%s: rendered manifests do not reference %s; does the Deployment use the image %s?", overlay, want, DefaultImage)
	}
	return out, nil
}
