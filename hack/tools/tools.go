//go:build tools

// Package tools pins the programs the test lab runs: kube-apiserver, etcd
// and kubectl, built from the Go module proxy at the versions in go.mod.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
