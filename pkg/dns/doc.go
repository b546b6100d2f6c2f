// Package dns owns the edits kubectl mesh makes to a cluster's DNS so that
// the "global" zone is forwarded to Istio's istiocoredns: a `global:53`
// server block in a CoreDNS Corefile (parsed with CoreDNS's own Corefile
// parser, never with regular expressions), a `global` stub domain in
// kube-dns' stubDomains, or a `global.server` key in a managed
// `coredns-custom` ConfigMap. Every edit is recorded as a Change holding the
// exact text before and after, so that removing it restores the user's
// configuration byte for byte, and kubectl mesh's own part (the global
// block, the global stub domain and what it replaced), so that after other
// edits only that part is taken out and everyone else's edits stay.
package dns
