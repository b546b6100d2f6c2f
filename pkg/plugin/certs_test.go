package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/certs"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki/pkitest"
)

func TestParseValidity(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		"years":    {in: "10y", want: 3650 * 24 * time.Hour},
		"days":     {in: "730d", want: 730 * 24 * time.Hour},
		"duration": {in: "8760h", want: 8760 * time.Hour},
		"empty":    {in: "", wantErr: "is not a duration"},
		"junk":     {in: "ten years", wantErr: "is not a duration"},
		"bad days": {in: "xd", wantErr: "is not a duration"},
		"negative": {in: "-5d", wantErr: "must be positive"},
		"zero":     {in: "0h", wantErr: "must be positive"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseValidity("validity", tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--validity") {
					t.Fatalf("parseValidity(%q) error %v, want one naming --validity and %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseValidity(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseClusterTargets(t *testing.T) {
	tests := map[string]struct {
		contexts, names []string
		want            []certs.Target
		wantErr         string
	}{
		"plain":          {contexts: []string{"cluster1", "cluster2"}, want: []certs.Target{{Name: "cluster1", Context: "cluster1"}, {Name: "cluster2", Context: "cluster2"}}},
		"pairs":          {contexts: []string{"east=gke_a", "west=gke_b"}, want: []certs.Target{{Name: "east", Context: "gke_a"}, {Name: "west", Context: "gke_b"}}},
		"names":          {contexts: []string{"gke_a", "gke_b"}, names: []string{"east", "west"}, want: []certs.Target{{Name: "east", Context: "gke_a"}, {Name: "west", Context: "gke_b"}}},
		"count mismatch": {contexts: []string{"a", "b"}, names: []string{"x"}, wantErr: "--cluster-names has 1 entries but --contexts has 2"},
		"both":           {contexts: []string{"x=a"}, names: []string{"y"}, wantErr: "use one of them"},
		"duplicate":      {contexts: []string{"a", "x=a", "a"}, wantErr: `cluster "a" appears twice`},
		"empty context":  {contexts: []string{"x="}, wantErr: "has no context"},
		"bad name":       {contexts: []string{"Bad_Name=ctx"}, wantErr: `cluster name "Bad_Name" is invalid`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseClusterTargets(tc.contexts, tc.names)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%v / %v: error %v, want %q", tc.contexts, tc.names, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("%v / %v = %v, %v; want %v", tc.contexts, tc.names, got, err, tc.want)
			}
		})
	}
}

func certsStreams() (genericiooptions.IOStreams, *bytes.Buffer, *bytes.Buffer) {
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	return genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: out, ErrOut: errOut}, out, errOut
}

// runCerts runs a certs subcommand that needs no cluster.
func runCerts(t *testing.T, args ...string) (string, error) {
	t.Helper()
	streams, out, _ := certsStreams()
	cmd := NewCmdCerts(cli.Factory{}, streams)
	cmd.SetArgs(args)
	cmd.SetOut(out)
	cmd.SetErr(&bytes.Buffer{})
	err := cmd.Execute()
	return out.String(), err
}

func mustCerts(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runCerts(t, args...)
	if err != nil {
		t.Fatalf("certs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestCertsFileCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	mustCerts(t, "root", "--dir", dir, "--key-algorithm", "ecdsa")
	mustCerts(t, "intermediate", "cluster1", "cluster2", "--dir", dir)
	root := pkitest.Fingerprints(t, filepath.Join(dir, pki.RootCertFile))
	chain := pkitest.Fingerprints(t, filepath.Join(dir, "cluster1", pki.CertChainFile))
	inter := pkitest.Fingerprints(t, filepath.Join(dir, "cluster1", pki.CACertFile))
	if len(chain) != 2 || chain[0] != inter[0] || chain[1] != root[0] {
		t.Fatalf("cert-chain.pem = %v, want intermediate %v then root %v", chain, inter, root)
	}
	tests := map[string]struct {
		args    []string
		wantErr string
	}{
		"root again":              {[]string{"root", "--dir", dir}, "root-cert.pem already exists; pass --force"},
		"intermediate again":      {[]string{"intermediate", "cluster1", "--dir", dir}, "ca-cert.pem already exists; pass --force"},
		"rotate unknown":          {[]string{"rotate", "cluster9", "--dir", dir}, "cluster cluster9 has no intermediate to rotate"},
		"root cert without key":   {[]string{"intermediate", "c3", "--dir", dir, "--root-cert", filepath.Join(dir, pki.RootCertFile)}, "--root-cert and --root-key go together"},
		"key as root cert":        {[]string{"intermediate", "c3", "--dir", dir, "--root-cert", filepath.Join(dir, pki.RootKeyFile), "--root-key", filepath.Join(dir, pki.RootKeyFile)}, "PEM block where a CERTIFICATE was expected"},
		"intermediate as root":    {[]string{"intermediate", "c3", "--dir", dir, "--root-cert", filepath.Join(dir, "cluster1", pki.CACertFile), "--root-key", filepath.Join(dir, pki.RootKeyFile)}, "the key does not match"},
		"bad cluster name":        {[]string{"intermediate", "Cluster_1", "--dir", dir}, `cluster name "Cluster_1" is invalid`},
		"bad algorithm":           {[]string{"root", "--dir", t.TempDir(), "--key-algorithm", "dsa"}, `--key-algorithm "dsa" is not supported`},
		"bad validity":            {[]string{"root", "--dir", t.TempDir(), "--validity", "forever"}, `--validity "forever" is not a duration`},
		"no root":                 {[]string{"intermediate", "c3", "--dir", t.TempDir()}, "root-cert.pem: not found; make a root with `kubectl mesh certs root`"},
		"finish without rotation": {[]string{"root", "--finish-rotation", "--dir", dir}, "no root rotation is in progress"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := runCerts(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("certs %v: error %v, want one line containing %q", tc.args, err, tc.wantErr)
			}
		})
	}
	if got := pkitest.Fingerprints(t, filepath.Join(dir, "cluster1", pki.CACertFile)); got[0] != inter[0] {
		t.Fatal("a refused command changed cluster1's intermediate")
	}

	// A new root over the old one leaves intermediates that no longer match
	// it: they still work (a warning), but not with intermediates made
	// from the new root.
	stale := filepath.Join(t.TempDir(), "stale")
	mustCerts(t, "root", "--dir", stale, "--key-algorithm", "ecdsa")
	mustCerts(t, "intermediate", "cluster1", "--dir", stale)
	mustCerts(t, "root", "--dir", stale, "--key-algorithm", "ecdsa", "--force")
	if out, err := runCerts(t, "verify", "--dir", stale); err != nil || !strings.Contains(out, "warning: ") || !strings.Contains(out, "does not hold the root of") {
		t.Fatalf("verify --dir with an intermediate from a replaced root: %v\n%s", err, out)
	}
	mustCerts(t, "intermediate", "cluster2", "--dir", stale)
	if out, err := runCerts(t, "verify", "--dir", stale); err == nil || !strings.Contains(out, "does not trust the root") {
		t.Fatalf("verify --dir with intermediates of two roots: %v\n%s", err, out)
	}

	out := mustCerts(t, "rotate", "cluster1", "--dir", dir)
	rotated := pkitest.Fingerprints(t, filepath.Join(dir, "cluster1", pki.CACertFile))
	if rotated[0] == inter[0] || !strings.Contains(out, "replaces "+inter[0]) {
		t.Fatalf("rotate did not replace the intermediate:\n%s", out)
	}
	if out := mustCerts(t, "verify", "--dir", dir); !strings.Contains(out, "2 cluster directories") {
		t.Fatalf("verify --dir:\n%s", out)
	}
}

// Without -o, each step of a root's life says what it wrote and what to
// do next; --rotate prints the steps of a rotation.
func TestCertsRootTable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	out := mustCerts(t, "root", "--dir", dir, "--key-algorithm", "ecdsa", "--common-name", "Lab Root")
	first := pkitest.Fingerprints(t, filepath.Join(dir, pki.RootCertFile))[0]
	if !strings.Contains(out, `wrote root CA "Lab Root" to `+dir) || !strings.Contains(out, "fingerprint "+first) || !strings.Contains(out, "next: kubectl mesh certs intermediate") {
		t.Errorf("root:\n%s", out)
	}
	mustCerts(t, "intermediate", "cluster1", "--dir", dir)
	out = mustCerts(t, "root", "--rotate", "--dir", dir, "--key-algorithm", "ecdsa", "--common-name", "Lab Root 2")
	second := pkitest.Fingerprints(t, filepath.Join(dir, pki.RootCertFile))[0]
	if !strings.Contains(out, "Root rotation, in this order") || !strings.Contains(out, `wrote new root CA "Lab Root 2"`) || !strings.Contains(out, "old root "+first) || !strings.Contains(out, "new root "+second) || !strings.Contains(out, "root-cert.pem of: [cluster1]") {
		t.Errorf("--rotate does not print the roots and the steps:\n%s", out)
	}
	mustCerts(t, "rotate", "cluster1", "--dir", dir)
	if out := mustCerts(t, "root", "--finish-rotation", "--dir", dir); !strings.Contains(out, "clusters [cluster1] trust only "+second) {
		t.Errorf("--finish-rotation:\n%s", out)
	}
}

// installer runs `certs install --dir DIR --contexts CONTEXTS FLAGS…`
// against fake clusters, given as DIR CONTEXTS FLAGS….
func installer(t *testing.T, clusters map[string]kubernetes.Interface, args ...string) (string, string, error) {
	t.Helper()
	streams, out, errOut := certsStreams()
	f := cli.Factory{ClusterFor: func(ctx string) (*cli.Cluster, error) {
		kube, ok := clusters[ctx]
		if !ok {
			return nil, fmt.Errorf("no cluster for context %s", ctx)
		}
		return &cli.Cluster{Context: ctx, Kube: kube}, nil
	}}
	cmd := NewCmdCertsInstall(f, streams)
	cmd.SetArgs(append([]string{"--dir", args[0], "--contexts", args[1]}, args[2:]...))
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

// -o of the file commands prints what they wrote instead of the messages;
// keys never appear in it.
func TestCertsFileCommandsOutput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	var root certs.RootResult
	out := mustCerts(t, "root", "--dir", dir, "--key-algorithm", "ecdsa", "-o", "json")
	if err := json.Unmarshal([]byte(out), &root); err != nil {
		t.Fatalf("root -o json: %v\n%s", err, out)
	}
	rootFP := pkitest.Fingerprints(t, filepath.Join(dir, pki.RootCertFile))[0]
	if root.Dir != dir || root.Root.Fingerprint != rootFP || root.Previous != nil {
		t.Errorf("root -o json = %+v, want the root %s in %s", root, rootFP, dir)
	}
	var inter certs.IntermediateResult
	out = mustCerts(t, "intermediate", "cluster1", "cluster2", "--dir", dir, "-o", "yaml")
	if err := yaml.Unmarshal([]byte(out), &inter); err != nil {
		t.Fatalf("intermediate -o yaml: %v\n%s", err, out)
	}
	if len(inter.Clusters) != 2 || inter.Clusters[1].Cluster != "cluster2" || inter.Clusters[1].Intermediate.Fingerprint != pkitest.Fingerprints(t, filepath.Join(dir, "cluster2", pki.CACertFile))[0] {
		t.Errorf("intermediate -o yaml = %+v, want both clusters' new intermediates", inter)
	}
	old := inter.Clusters[0].Intermediate.Fingerprint
	out = mustCerts(t, "rotate", "cluster1", "--dir", dir, "-o", "jsonpath={.clusters[0].replaces}")
	if out != old {
		t.Errorf("rotate -o jsonpath={.clusters[0].replaces} = %q, want the replaced %s", out, old)
	}
	if out := mustCerts(t, "verify", "--dir", dir, "-o", "jsonpath={.ok}"); out != "true" {
		t.Errorf("verify -o jsonpath={.ok} = %q", out)
	}
	out = mustCerts(t, "root", "--rotate", "--dir", dir, "--key-algorithm", "ecdsa", "-o", "json")
	if err := json.Unmarshal([]byte(out), &root); err != nil || root.Previous == nil || root.Previous.Fingerprint != rootFP || len(root.Clusters) != 2 {
		t.Errorf("root --rotate -o json = %+v (%v), want the previous root %s and both clusters", root, err, rootFP)
	}
	for _, args := range [][]string{{"root", "--dir", dir}, {"intermediate", "c3", "--dir", dir}, {"verify", "--dir", dir}} {
		if _, err := runCerts(t, append(args, "-o", "name")...); err == nil || !strings.Contains(err.Error(), `--output "name" is not supported`) {
			t.Errorf("%v -o name: %v, want a refusal naming --output", args, err)
		}
	}
}
