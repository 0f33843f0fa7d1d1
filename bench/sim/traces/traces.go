// Package traces embeds the simulator's load traces (*.trace), so
// `go run ./bench/sim -all` and the regression tests find them wherever they
// run from. The format is documented in
// github.com/flint-dev/flint/internal/autoscaler/sim.ParseTrace.
package traces

import "embed"

// FS holds every *.trace file of this directory.
//
//go:embed *.trace
var FS embed.FS
