package cli

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// restoreGC puts the collector's settings back after a test changed them.
func restoreGC(t *testing.T) {
	pct := debug.SetGCPercent(100)
	debug.SetGCPercent(pct)
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(pct)
		debug.SetMemoryLimit(limit)
	})
}

func TestTuneDataPlaneGC(t *testing.T) {
	restoreGC(t)
	dir := t.TempDir()
	old := cgroupMemoryMax
	t.Cleanup(func() { cgroupMemoryMax = old })
	cgroupMemoryMax = filepath.Join(dir, "memory.max")

	// No container limit: GOGC=400, no soft limit.
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(math.MaxInt64)
	tuneDataPlaneGC()
	if got := debug.SetGCPercent(100); got != dataPlaneGCPercent {
		t.Errorf("GC percent %d, want %d", got, dataPlaneGCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory limit %d without a cgroup limit, want none", got)
	}

	// A container limit of 512 MiB: the soft limit is 90% of it.
	if err := os.WriteFile(cgroupMemoryMax, []byte("536870912\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tuneDataPlaneGC()
	if got, want := debug.SetMemoryLimit(-1), int64(536870912/10*9); got != want {
		t.Errorf("memory limit %d, want %d", got, want)
	}

	// "max" (no limit) sets none.
	debug.SetMemoryLimit(math.MaxInt64)
	if err := os.WriteFile(cgroupMemoryMax, []byte("max\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tuneDataPlaneGC()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory limit %d for memory.max=max, want none", got)
	}

	// The operator's GOGC wins.
	t.Setenv("GOGC", "50")
	debug.SetGCPercent(50)
	tuneDataPlaneGC()
	if got := debug.SetGCPercent(100); got != 50 {
		t.Errorf("GC percent %d with GOGC=50 set, want it left alone", got)
	}
}

// TestManagerGC: the manager collects at GOGC=50 unless GOGC is set, and
// gets the same soft limit as the data plane, 90% of the container's,
// unless GOMEMLIMIT is set.
func TestManagerGC(t *testing.T) {
	restoreGC(t)
	old := cgroupMemoryMax
	t.Cleanup(func() { cgroupMemoryMax = old })
	cgroupMemoryMax = filepath.Join(t.TempDir(), "memory.max")
	if err := os.WriteFile(cgroupMemoryMax, []byte("536870912\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(math.MaxInt64)
	tuneManagerGC()
	if got, want := debug.SetMemoryLimit(-1), int64(536870912/10*9); got != want {
		t.Errorf("memory limit %d, want %d", got, want)
	}
	if got := debug.SetGCPercent(100); got != managerGCPercent {
		t.Errorf("GC percent %d, want %d", got, managerGCPercent)
	}

	// The operator's GOGC and GOMEMLIMIT win (the runtime read them).
	t.Setenv("GOGC", "100")
	t.Setenv("GOMEMLIMIT", "300MiB")
	debug.SetMemoryLimit(math.MaxInt64)
	tuneManagerGC()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory limit %d with GOMEMLIMIT set, want the runtime's own", got)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent %d with GOGC set, want the runtime's own", got)
	}
}
