package webhook

import (
	"strings"
	"testing"
)

// TestWebhookDown stops cluster1's webhook, so it must run last: go test
// runs the files of a package in name order, and this one sorts last.
func TestWebhookDown(t *testing.T) {
	ctx := t.Context()
	if err := deny.Stop(); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := kubectl(t, ctx, "cluster1", minimal("while-down", "down.foo.global"), "apply", "-f", "-")
	if err == nil || !strings.Contains(stderr, "mesh.kubectl-mesh.io") {
		t.Errorf(".global write with the webhook down: %v %s; want it refused by the failing webhook call", err, stderr)
	}
	ext := "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: local-while-down, namespace: foo}\nspec:\n  hosts: [www.example.org]\n  location: MESH_EXTERNAL\n  resolution: DNS\n  ports: [{name: https, number: 443, protocol: TLS}]\n"
	if _, _, err := kubectl(t, ctx, "cluster1", ext, "apply", "-f", "-"); err != nil {
		t.Errorf("non-.global write with the webhook down: %v", err)
	}
	// In a namespace opted out of the webhook (never sent to it, so writes
	// work while it is down), the ValidatingAdmissionPolicy still holds the
	// stateless rules.
	if _, _, err := kubectl(t, ctx, "cluster1", "", "create", "namespace", "optout"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := kubectl(t, ctx, "cluster1", "", "label", "namespace", "optout", "mesh.kubectl-mesh.io/webhook=disabled"); err != nil {
		t.Fatal(err)
	}
	external := strings.Replace(variant(t, "external-while-down", "  location: MESH_EXTERNAL\n  resolution: DNS\n"), "namespace: foo", "namespace: optout", 1)
	_, stderr, err = kubectl(t, ctx, "cluster1", external, "apply", "-f", "-")
	if err == nil || !strings.Contains(stderr, "mesh-global-serviceentries") || !strings.Contains(stderr, "spec.location") {
		t.Errorf("MESH_EXTERNAL .global entry with the webhook down: %v %s; want the ValidatingAdmissionPolicy's denial naming spec.location", err, stderr)
	}
	valid := strings.Replace(variant(t, "valid-while-down", "  location: MESH_INTERNAL\n  resolution: DNS\n  addresses: [240.2.0.77]\n  endpoints:\n  - {address: 203.0.113.7, labels: {cluster: cluster2}, ports: {http1: 15443}}\n"), "namespace: foo", "namespace: optout", 1)
	if _, _, err := kubectl(t, ctx, "cluster1", valid, "apply", "-f", "-"); err != nil {
		t.Errorf("a complete .global entry in an opted-out namespace: %v", err)
	}
}
