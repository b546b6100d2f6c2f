package webhook

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// MemoryLimitFraction is the share of the container's memory limit the Go
// runtime aims to stay under, leaving room for what it does not count
// (stacks of cgo threads, the binary's pages).
const MemoryLimitFraction = 0.9

// CgroupMemoryLimit reads the memory limit of the cgroup the process runs
// in under root (normally /sys/fs/cgroup): cgroup v2's memory.max, else
// cgroup v1's memory.limit_in_bytes. ok is false when there is no limit.
func CgroupMemoryLimit(root string) (limit int64, ok bool) {
	for _, f := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		// cgroup v1 reports "no limit" as a number near 2^63.
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// SetMemoryLimit makes the Go runtime collect garbage harder as the
// process nears its container's memory limit, instead of being killed at
// it: unless GOMEMLIMIT is set, the soft limit becomes
// MemoryLimitFraction of the cgroup's limit. It returns the limit set, or 0.
func SetMemoryLimit(root string) int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	limit, ok := CgroupMemoryLimit(root)
	if !ok {
		return 0
	}
	soft := int64(float64(limit) * MemoryLimitFraction)
	debug.SetMemoryLimit(soft)
	return soft
}
