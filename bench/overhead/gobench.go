package main

import (
	"bufio"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// The in-process Go benchmarks that count the data plane's own work per
// request (docs/benchmarks.md, "Profiling the hot path").
var goBenchmarks = []struct{ pkg, pattern string }{
	{"./internal/proxy/", "^(BenchmarkSidecarHandler|BenchmarkProxy)$"},
	{"./internal/gateway/", "^(BenchmarkGatewayHandler|BenchmarkChain)$"},
}

type benchLine struct {
	name                    string
	nsPerOp, bPerOp, allocs float64
}

func runGoBenchmarks(repo, benchtime string) ([]benchLine, error) {
	var lines []benchLine
	for _, b := range goBenchmarks {
		cmd := exec.Command("go", "test", "-run", "^$", "-bench", b.pattern, "-benchmem", "-benchtime", benchtime, b.pkg)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("go test -bench %s: %w\n%s", b.pkg, err, out)
		}
		lines = append(lines, parseGoBench(string(out))...)
	}
	return lines, nil
}

// parseGoBench reads `go test -bench -benchmem` result lines:
//
//	BenchmarkSidecarHandler/unlimited-2   400000   3150 ns/op   3017 B/op   25 allocs/op
func parseGoBench(out string) []benchLine {
	var lines []benchLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		l := benchLine{name: strings.TrimPrefix(f[0], "Benchmark")}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				l.nsPerOp = v
			case "B/op":
				l.bPerOp = v
			case "allocs/op":
				l.allocs = v
			}
		}
		lines = append(lines, l)
	}
	return lines
}
