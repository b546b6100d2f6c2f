//go:build tools

// Package tools pins Krew (used with --archive to install release archives
// exactly as users do) and Krew's own manifest validator. It is a separate
// module so that Krew's dependencies never enter the product's go.mod.
package tools

import (
	_ "sigs.k8s.io/krew/cmd/krew"
	_ "sigs.k8s.io/krew/cmd/validate-krew-manifest"
)
