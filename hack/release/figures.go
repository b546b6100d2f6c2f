package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"
)

// Figures prints the size of every archive and of the binary inside it,
// and the cold-start time of `kubectl mesh --help` (the host's binary from
// its archive, run directly and through kubectl's plugin discovery): the
// median of runs, each a fresh process.
func Figures(ctx context.Context, dist, kubectl string, runs int, out io.Writer) error {
	m, err := ReadManifest(filepath.Join(dist, ManifestFile))
	if err != nil {
		return fmt.Errorf("%w; run make release first", err)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "platform\tarchive bytes\tbinary bytes\t")
	var hostBin []byte
	for i, pp := range m.Spec.Platforms {
		p, err := platformOf(pp)
		if err != nil {
			return fmt.Errorf("spec.platforms[%d]: %w", i, err)
		}
		name := path.Base(pp.URI)
		data, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			return err
		}
		files, err := ReadArchive(name, data)
		if err != nil {
			return err
		}
		idx := slices.IndexFunc(files, func(f ArchiveFile) bool { return f.Name == pp.Bin })
		if idx < 0 {
			return fmt.Errorf("%s lacks %s", name, pp.Bin)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", p, len(data), len(files[idx].Data))
		if p == hostPlatform() {
			hostBin = files[idx].Data
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if hostBin == nil {
		return fmt.Errorf("no archive for the host platform %s in %s", hostPlatform(), dist)
	}
	dir, err := os.MkdirTemp("", "figures-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	plugin := filepath.Join(dir, "kubectl-mesh")
	if err := os.WriteFile(plugin, hostBin, 0o755); err != nil {
		return err
	}
	env := append(os.Environ(), "PATH="+dir, "KUBECONFIG="+os.DevNull)
	direct, err := median(ctx, runs, env, plugin, "--help")
	if err != nil {
		return err
	}
	viaKubectl, err := median(ctx, runs, env, kubectl, "mesh", "--help")
	if err != nil {
		return err
	}
	kubectlAlone, err := median(ctx, runs, env, kubectl, "version", "--client")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\ncold start, median of %d runs (%s):\n", runs, hostPlatform())
	fmt.Fprintf(out, "  kubectl-mesh --help          %8.1f ms\n", ms(direct))
	fmt.Fprintf(out, "  kubectl mesh --help          %8.1f ms  (%.2fx of kubectl-mesh --help)\n", ms(viaKubectl), float64(viaKubectl)/float64(direct))
	fmt.Fprintf(out, "  kubectl version --client     %8.1f ms  (kubectl alone, for reference)\n", ms(kubectlAlone))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(ctx context.Context, runs int, env []string, name string, args ...string) (time.Duration, error) {
	if runs < 1 {
		return 0, fmt.Errorf("-runs must be at least 1, got %d", runs)
	}
	times := make([]time.Duration, 0, runs)
	for range runs {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("%s %v: %w: %s", name, args, err, stderr.String())
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}
