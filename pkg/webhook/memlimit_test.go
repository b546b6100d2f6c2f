package webhook

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestCgroupMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
		want                int64
		ok                  bool
	}{
		{"v2 limit", "memory.max", "268435456\n", 268435456, true},
		{"v2 unlimited", "memory.max", "max\n", 0, false},
		{"v1 limit", "memory/memory.limit_in_bytes", "134217728\n", 134217728, true},
		{"v1 unlimited", "memory/memory.limit_in_bytes", "9223372036854771712\n", 0, false},
		{"garbage", "memory.max", "lots\n", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			p := filepath.Join(root, tc.file)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, ok := CgroupMemoryLimit(root)
			if got != tc.want || ok != tc.ok {
				t.Errorf("CgroupMemoryLimit = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	if _, ok := CgroupMemoryLimit(t.TempDir()); ok {
		t.Error("no cgroup files: got a limit")
	}
}

func TestSetMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "memory.max"), []byte("268435456"), 0o600); err != nil {
		t.Fatal(err)
	}
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	if got := SetMemoryLimit(root); got != 241591910 {
		t.Fatalf("SetMemoryLimit = %d, want 90%% of 256 MiB", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 241591910 {
		t.Errorf("runtime limit = %d after SetMemoryLimit", got)
	}
	t.Setenv("GOMEMLIMIT", "100MiB")
	if got := SetMemoryLimit(root); got != 0 {
		t.Errorf("GOMEMLIMIT set: SetMemoryLimit = %d, want 0 (left to the runtime)", got)
	}
}
