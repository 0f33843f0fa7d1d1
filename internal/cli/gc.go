package cli

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// dataPlaneGCPercent is the garbage collector's target for the roles that
// forward every request (flint proxy, flint gateway) when GOGC is unset.
// Their live heap is small (a few MB) while net/http allocates ~70 objects
// per proxied request, so at Go's default of 100 the collector runs every
// ~800 requests; at 400 it runs a quarter as often. Measured on the sidecar
// (wrk, 32 connections, 3 interleaved pairs): CPU per request 65 → 49 µs,
// GC cycles per 1000 requests 1.28 → 0.30, peak RSS 54 → 74 MB.
const dataPlaneGCPercent = 400

// managerGCPercent is the manager's garbage collector target when GOGC is
// unset. Its live heap is large (~70 MiB at 2,000 agents: caches, the
// autoscaler's windows) and it allocates little when idle, so at Go's
// default of 100 its RSS is mostly headroom between collections. Measured
// at 2,000 agents (bench/scale, docs/scale.md): RSS 250-278 -> 203-212 MiB,
// idle CPU 1.0% either way.
const managerGCPercent = 50

// tuneManagerGC applies managerGCPercent unless the operator chose GOGC,
// and the container's memory limit (limitMemoryToContainer).
func tuneManagerGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(managerGCPercent)
	}
	limitMemoryToContainer()
}

// cgroupMemoryMax is where a container's memory limit is (cgroup v2).
var cgroupMemoryMax = "/sys/fs/cgroup/memory.max"

// tuneDataPlaneGC applies dataPlaneGCPercent unless the operator chose
// GOGC, and keeps the larger heap target from ever causing an OOM kill: with
// a container memory limit and no GOMEMLIMIT, the collector's soft limit is
// set to 90% of it, so it collects as often as needed near the limit.
func tuneDataPlaneGC() {
	if os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(dataPlaneGCPercent)
	limitMemoryToContainer()
}

// limitMemoryToContainer sets the collector's soft memory limit to 90% of
// the container's memory limit, unless GOMEMLIMIT is set or there is no
// limit: near it the runtime collects harder and returns freed memory to
// the OS rather than being OOM-killed. The manager runs with it too (its
// peak is the first reconcile of every Agent, docs/scale.md).
func limitMemoryToContainer() {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if b, err := os.ReadFile(cgroupMemoryMax); err == nil {
		if limit, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && limit > 0 {
			debug.SetMemoryLimit(limit / 10 * 9)
		}
	}
}
