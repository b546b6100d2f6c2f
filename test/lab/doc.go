// Package lab runs a local multi-cluster lab on real parts: one etcd and one
// kube-apiserver per cluster (built from the Go module proxy by
// hack/tools into bin/), started through controller-runtime's envtest, with
// Istio's real CRDs and the furniture a real Istio cluster has — gateways,
// istiocoredns, the cluster DNS ConfigMaps, nodes and sample apps — created
// through the API, not mocked.
//
// Tests start a lab per package with Start and stop it with Stop; `make
// lab-up` starts a detached one (hack/lab) whose processes outlive the
// command and are stopped by PID with `make lab-down`.
package lab
