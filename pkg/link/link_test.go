package link

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/cli/clitest"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

func request(dry cli.DryRun, multiPrimary bool) Request {
	req := Request{DryRun: dry, SkipTrustCheck: true, GatewayNamespace: rules.IstioSystemNamespace, TokenExpiry: 24 * time.Hour}
	if multiPrimary {
		req.MultiPrimary, req.Networks = true, map[string]string{"c2": "net2"}
	}
	return req
}

// linker links on fakes; the token check asks the callee's fake.
func linker(t *testing.T, req Request, to *clitest.Cluster, out *bytes.Buffer) *Linker {
	return &Linker{Request: req, Log: &StepLog{Out: out, ErrOut: out, DryRun: req.DryRun}, Factory: clitest.Clusters{to}.Factory(t)}
}

// A client dry run sends no write; a server dry run sends every write, each
// with dryRun=All; a real run writes (so that the first two can fail).
func TestLinkDryRuns(t *testing.T) {
	for _, mp := range []bool{false, true} {
		for _, dry := range []cli.DryRun{cli.DryRunNone, cli.DryRunClient, cli.DryRunServer} {
			name := dry.String()
			if mp {
				name += " multi-primary"
			}
			t.Run(name, func(t *testing.T) {
				from, to := caller(), callee()
				var out bytes.Buffer
				if err := linker(t, request(dry, mp), to, &out).Link(t.Context(), from.Cluster, to.Cluster); err != nil {
					t.Fatalf("link: %v\n%s", err, out.String())
				}
				writes := clitest.Clusters{from, to}.Writes()
				wantLines := []string{"dns ", "changed" + dry.Suffix() + " ", "record "}
				if mp {
					wantLines = append(wantLines, "remote secret", "reader token", "network")
				}
				outputHas(t, out.String(), wantLines...)
				clitest.CheckDryRun(t, dry, writes)
				if dry == cli.DryRunNone && corefileOf(t, from) == clitest.Corefile {
					t.Errorf("link did not edit the Corefile:\n%s", out.String())
				}
			})
		}
	}
}

// A link on fakes, then unlink: every dry run leaves the Corefile and the
// record alone; a real unlink gives the Corefile back byte for byte and
// deletes the record.
func TestUnlinkDryRunsAndRestore(t *testing.T) {
	for _, dry := range []cli.DryRun{cli.DryRunNone, cli.DryRunClient, cli.DryRunServer} {
		t.Run(dry.String(), func(t *testing.T) {
			from, to := caller(), callee()
			var out bytes.Buffer
			if err := linker(t, request(cli.DryRunNone, false), to, &out).Link(t.Context(), from.Cluster, to.Cluster); err != nil {
				t.Fatalf("link: %v\n%s", err, out.String())
			}
			clitest.Clusters{from, to}.Reset()
			out.Reset()
			u := &Unlinker{DryRun: dry, Log: &StepLog{Out: &out, ErrOut: &out, DryRun: dry}}
			if err := u.Unlink(t.Context(), from.Cluster, Peer{Context: "c2", Cluster: to.Cluster}); err != nil {
				t.Fatalf("unlink: %v\n%s", err, out.String())
			}
			outputHas(t, out.String(), "key Corefile restored", "changed"+dry.Suffix()+" ", "kept: other clusters may call through it")
			writes := clitest.Clusters{from, to}.Writes()
			_, recErr := from.Stored(gvrConfigMap, rules.MeshNamespace, mesh.RecordName("c2"))
			clitest.CheckDryRun(t, dry, writes)
			if dry != cli.DryRunNone {
				if recErr != nil {
					t.Errorf("a dry run deleted the link record: %v", recErr)
				}
				return
			}
			if got := corefileOf(t, from); got != clitest.Corefile {
				t.Errorf("unlink did not restore the Corefile:\n%s\nwant\n%s", got, clitest.Corefile)
			}
			if recErr == nil {
				t.Error("unlink left the link record")
			}
		})
	}
}

// Unlink of a cluster that was never linked says so and writes nothing.
func TestUnlinkWithoutRecord(t *testing.T) {
	from := caller()
	var out bytes.Buffer
	u := &Unlinker{Log: &StepLog{Out: &out, ErrOut: &out}}
	if err := u.Unlink(t.Context(), from.Cluster, Peer{Context: "c2", Err: errors.New("context \"c2\" is not in the kubeconfig")}); err != nil {
		t.Fatal(err)
	}
	outputHas(t, out.String(), "skipped", "c1 is not linked to c2")
	if w := from.Writes(); len(w) != 0 {
		t.Errorf("unlink without a record sent %v", w)
	}
}

// With -o the objects written are kept for printing, the remote secret's
// token redacted.
func TestLinkCollectsObjects(t *testing.T) {
	from, to := caller(), callee()
	var out bytes.Buffer
	l := linker(t, request(cli.DryRunClient, true), to, &out)
	l.Log.Collect = true
	if err := l.Link(t.Context(), from.Cluster, to.Cluster); err != nil {
		t.Fatalf("link: %v\n%s", err, out.String())
	}
	var kinds []string
	for _, o := range l.Log.Objects() {
		kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
		if strings.Contains(mustJSON(t, o), "reader-token") {
			t.Errorf("a printed object holds the token: %s", mustJSON(t, o))
		}
	}
	for _, want := range []string{"ConfigMap", "Gateway", "Secret", "Namespace", "Service"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("objects kept %v lack a %s", kinds, want)
		}
	}
}

func mustJSON(t *testing.T, o runtime.Object) string {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Issue 13, item 4: link's token binding Secret, made for a new reader
// token, must not stay behind when the token cannot be had (an error, an
// interrupt): no remote secret would hold a token bound to it.
func TestNewTokenFailureRemovesBinding(t *testing.T) {
	to := clitest.NewCluster("c2")
	to.KubeFake.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "token" {
			return true, nil, errors.New("context canceled")
		}
		return false, nil, nil
	})
	var out bytes.Buffer
	r := &run{
		Linker: &Linker{Request: Request{TokenExpiry: 24 * time.Hour}, Log: &StepLog{Out: &out, ErrOut: &out}},
		from:   &cli.Cluster{Context: "c1"}, to: to.Cluster,
		toW: cli.Writer{Dynamic: to.Dynamic},
	}
	mp := &mesh.MultiPrimaryRecord{Reader: "istio-reader-service-account", TokenBinding: mesh.TokenBindingName("c1")}
	_, _, err := r.newToken(t.Context(), mp)
	if err == nil {
		t.Fatal("newToken with a failing TokenRequest succeeded")
	}
	if !slices.ContainsFunc(to.DynamicFake.Actions(), func(a k8stesting.Action) bool { return a.GetVerb() == "create" }) {
		t.Fatal("newToken made no token binding Secret; the test needs one to remove")
	}
	if _, gerr := to.Stored(gvrSecret, rules.IstioSystemNamespace, mp.TokenBinding); gerr == nil {
		t.Errorf("the token binding Secret %s stays after the failure %v", mp.TokenBinding, err)
	}
	if !strings.Contains(out.String(), "removed again (undone)") {
		t.Errorf("link does not say it removed the binding:\n%s", out.String())
	}
}
