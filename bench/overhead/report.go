package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// tableOrder puts each Flint path after the nginx path it is compared with.
var tableOrder = []string{nameDirect, nameNginx1, nameSidecar, nameSidecarGoroutines, nameCapped, nameEpoll,
	nameNginx2, nameGateway, nameGatewayGoroutines, nameRP2, nameNginx2Mixed, nameGatewayMixed}

func writeReport(w io.Writer, o options, paths []*path, goBench []benchLine) {
	paths = slices.Clone(paths)
	slices.SortStableFunc(paths, func(a, b *path) int {
		return slices.Index(tableOrder, a.name) - slices.Index(tableOrder, b.name)
	})
	byName := map[string]*path{}
	for _, p := range paths {
		byName[p.name] = p
	}
	fmt.Fprintf(w, "### Closed loop: maximum throughput (wrk, %d connections, %d threads; agent sleep %s)\n\n", o.conns, o.threads, o.sleep)
	fmt.Fprintf(w, "%d interleaved rounds of %s per path, medians over the rounds; ratios are to nginx with as many hops. CPU is user+sys per request of each process on the path over the rounds (/proc/<pid>/stat), proxies summed; allocations are go_memstats_mallocs_total per request of Flint's processes.\n\n", o.rounds, o.duration)
	fmt.Fprintln(w, "| path | req/s | × nginx | p50 | × nginx | p99 | × nginx | proxy CPU µs/req | × nginx | CPU µs/req by process | allocs/req by process |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
	for _, p := range paths {
		m := medianResult(p.closed)
		base := byName[p.baseline]
		var bm result
		var bcpu float64
		if base != nil {
			bm, bcpu = medianResult(base.closed), base.proxyCPU()
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", p.name,
			m.throughput, ratio(m.throughput, bm.throughput, base),
			ms(m.p50), ratio(float64(m.p50), float64(bm.p50), base),
			ms(m.p99), ratio(float64(m.p99), float64(bm.p99), base),
			cpuCell(p.proxyCPU(), len(p.hops) > 1), ratio(p.proxyCPU(), bcpu, base),
			p.cpuByProcess(), p.allocsByProcess())
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "### Open loop: latency at fixed rates (vegeta; agent sleep %s)\n\n", o.sleep)
	fmt.Fprintln(w, "| path | rate/s | p50 | × nginx | p90 | p99 | × nginx | max | success |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, rate := range o.rates {
		for _, p := range paths {
			if p.script != "" {
				continue
			}
			m := medianResult(p.open[rate])
			base := byName[p.baseline]
			var bm result
			if base != nil {
				bm = medianResult(base.open[rate])
			}
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %.4f |\n", p.name, rate,
				ms(m.p50), ratio(float64(m.p50), float64(bm.p50), base), ms(m.p90),
				ms(m.p99), ratio(float64(m.p99), float64(bm.p99), base), ms(m.max), m.success)
		}
	}
	if len(goBench) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "### In process (`go test -bench -benchmem -benchtime %s`)\n\n", o.benchtime)
		fmt.Fprintln(w, "Handler benchmarks count one process's own work with the next hop's answer canned; Proxy and Chain run real servers over loopback and count the whole test process (client, proxies and agent).")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| benchmark | ns/op | B/op | allocs/op |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
		for _, l := range goBench {
			fmt.Fprintf(w, "| %s | %.0f | %.0f | %.0f |\n", l.name, l.nsPerOp, l.bPerOp, l.allocs)
		}
	}
	fmt.Fprintln(w)
	host, _ := os.Hostname()
	fmt.Fprintf(w, "Taken %s on %s: %d cores, %s. Goal (issue 19): sidecar ≥ 0.80× nginx x1 and gateway+sidecar ≥ 0.80× nginx x2 in req/s, p50 and p99 ≤ 1.25× nginx's.\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), host, runtime.NumCPU(), runtime.Version())
}

// proxyCPU is the CPU time per request, in µs, of the proxies on the path
// (every process but the agent, which is the last).
func (p *path) proxyCPU() float64 {
	if p.reqs == 0 {
		return 0
	}
	var sum time.Duration
	for _, c := range p.cpu[:len(p.cpu)-1] {
		sum += c
	}
	return perRequest(sum, p.reqs)
}

func (p *path) cpuByProcess() string {
	parts := make([]string, len(p.hops))
	for i, h := range p.hops {
		parts[i] = fmt.Sprintf("%s %.1f", h.name, perRequest(p.cpu[i], p.reqs))
	}
	return strings.Join(parts, ", ")
}

func (p *path) allocsByProcess() string {
	var parts []string
	for i, h := range p.hops {
		if h.metrics != "" && p.allocs[i] > 0 && p.reqs > 0 {
			parts = append(parts, fmt.Sprintf("%s %.1f", h.name, p.allocs[i]/float64(p.reqs)))
		}
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, ", ")
}

func perRequest(d time.Duration, reqs int64) float64 {
	if reqs == 0 {
		return 0
	}
	return float64(d) / float64(time.Microsecond) / float64(reqs)
}

func cpuCell(us float64, hasProxy bool) string {
	if !hasProxy {
		return "–"
	}
	return fmt.Sprintf("%.1f", us)
}

// ratio is v / base as "0.83", or "–" without a baseline.
func ratio(v, base float64, basePath *path) string {
	if basePath == nil || base == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", v/base)
}

// medianResult takes each quantile's and the throughput's median over the
// rounds, the worst max and success.
func medianResult(rs []result) result {
	if len(rs) == 0 {
		return result{}
	}
	med := func(f func(result) float64) float64 {
		vs := make([]float64, len(rs))
		for i, r := range rs {
			vs[i] = f(r)
		}
		slices.Sort(vs)
		if len(vs)%2 == 1 {
			return vs[len(vs)/2]
		}
		return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	d := func(f func(result) time.Duration) time.Duration {
		return time.Duration(med(func(r result) float64 { return float64(f(r)) }))
	}
	m := result{
		p50:        d(func(r result) time.Duration { return r.p50 }),
		p90:        d(func(r result) time.Duration { return r.p90 }),
		p99:        d(func(r result) time.Duration { return r.p99 }),
		throughput: med(func(r result) float64 { return r.throughput }),
		success:    1,
	}
	for _, r := range rs {
		m.max = max(m.max, r.max)
		m.success = min(m.success, r.success)
		m.requests += r.requests
	}
	return m
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }

// Markers around the generated section of a Markdown file.
const (
	sectionBegin = "<!-- generated by bench/overhead: begin -->"
	sectionEnd   = "<!-- generated by bench/overhead: end -->"
)

// replaceSection puts report between the markers in file.
func replaceSection(file, report string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, sectionBegin), strings.Index(s, sectionEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q … %q section to replace", file, sectionBegin, sectionEnd)
	}
	s = s[:i+len(sectionBegin)] + "\n\n" + strings.TrimSpace(report) + "\n\n" + s[j:]
	return os.WriteFile(file, []byte(s), 0o644)
}
