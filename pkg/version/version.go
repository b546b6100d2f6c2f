// Package version holds the build's version and commit, stamped by the
// linker (-X) in the Makefile and release builds.
package version

import "runtime"

// Set with -ldflags "-X github.com/kubectl-mesh/kubectl-mesh/pkg/version.Version=v0.1.0 …".
var (
	Version = "v0.0.0-dev"
	Commit  = "unknown"
)

// Info is what `kubectl mesh version` prints.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the stamped build information.
func Get() Info {
	return Info{
		Version:   Version,
		Commit:    Commit,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
}
