package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flint-dev/flint/bench/internal/procs"
	"github.com/flint-dev/flint/internal/wire"
)

// hop is one process on a path.
type hop struct {
	name    string
	pid     int
	metrics string // Prometheus endpoint with go_memstats_mallocs_total, for Flint's processes
}

// path is one way of reaching the agent.
type path struct {
	name     string
	url      string
	hops     []hop  // the proxies, first to last, then the agent
	baseline string // the nginx path it is compared with ("" for none)
	flint    bool   // Flint's own processes (allocation counts)
	// script is a wrk Lua script shaping the closed loop's requests ("" for
	// plain GETs); such a path has no open-loop rows (vegeta sends GETs).
	script string

	closed []result // one per round
	open   map[int][]result
	cpu    []time.Duration // per hop, summed over the closed-loop rounds
	allocs []float64       // per hop, mallocs summed over the closed-loop rounds (0: unknown)
	reqs   int64           // requests over the closed-loop rounds
}

const (
	nameDirect  = "direct"
	nameNginx1  = "nginx x1"
	nameNginx2  = "nginx x2"
	nameSidecar = "sidecar"
	nameGateway = "gateway+sidecar"
	nameRP2     = "ReverseProxy x2"
	// A sidecar capping the agent at 4 requests in flight, the rest waiting
	// in its queue: Flint's own case, which nginx has no counterpart for.
	nameCapped = "sidecar, 4 slots"
	// Mixed traffic: every 50th request on a connection a POST with a body
	// over the relay's limit, which net/http serves (issue 19's take-back).
	nameNginx2Mixed  = "nginx x2, 2% large bodies"
	nameGatewayMixed = "gateway+sidecar, 2% large bodies"
	// The floor of a Go relay on its own epoll loops (eventloop.go): what
	// one hop costs in Go without the netpoller and goroutine per connection.
	nameEpoll = "Go epoll relay"
	// The sidecar and the gateway with -event-loops 0: their relays on a
	// goroutine per connection, as before the event loops (issue 19).
	nameSidecarGoroutines = "sidecar, -event-loops 0"
	nameGatewayGoroutines = "gateway+sidecar, -event-loops 0"
)

// mixedScript is the wrk script of the mixed-traffic paths.
const mixedScript = `local n = 0
local big = string.rep("x", 70 * 1024)
request = function()
  n = n + 1
  if n % 50 == 0 then
    return wrk.format("POST", nil, {["Content-Type"] = "text/plain"}, big)
  end
  return wrk.format("GET")
end
`

// run measures every path and writes the report; it returns the paths
// with their measurements.
func run(o options, out io.Writer) ([]*path, error) {
	var report strings.Builder
	w := io.MultiWriter(out, &report)
	var goBench []benchLine
	if o.gobench {
		var err error
		if goBench, err = runGoBenchmarks(o.repo, o.benchtime); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "flint-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	paths, stop, err := start(o, dir)
	defer stop()
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		if err := procs.WaitOK(p.url, 30*time.Second); err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		attack(p.url, 0, o.warmup, o.conns)
	}
	for round := range o.rounds {
		for i := range paths {
			p := paths[(i+round)%len(paths)]
			if err := measureClosed(p, o); err != nil {
				return nil, err
			}
		}
		for _, rate := range o.rates {
			for i := range paths {
				p := paths[(i+round)%len(paths)]
				if p.script != "" {
					continue
				}
				p.open[rate] = append(p.open[rate], attack(p.url, rate, o.duration, 0))
			}
		}
	}
	writeReport(w, o, paths, goBench)
	if o.doc != "" {
		return paths, replaceSection(o.doc, report.String())
	}
	return paths, nil
}

// start runs the agent, the proxies and the baselines, and returns the
// paths through them in the order they are measured in the first round.
func start(o options, dir string) ([]*path, func(), error) {
	var g procs.Group
	flint, echo, err := procs.Build(o.repo, dir)
	if err != nil {
		return nil, g.Stop, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, g.Stop, err
	}
	agentFile := filepath.Join(dir, "echo.yaml")
	if err := os.WriteFile(agentFile, []byte(fmt.Sprintf(agentYAML, echo)), 0o644); err != nil {
		return nil, g.Stop, err
	}
	mixed := filepath.Join(dir, "mixed.lua")
	if err := os.WriteFile(mixed, []byte(mixedScript), 0o644); err != nil {
		return nil, g.Stop, err
	}
	agent, sidecar, admin, gw := procs.FreeAddr(), procs.FreeAddr(), procs.FreeAddr(), procs.FreeAddr()
	capped, cappedAdmin := procs.FreeAddr(), procs.FreeAddr()
	rp1, rp2, epoll := procs.FreeAddr(), procs.FreeAddr(), procs.FreeAddr()
	gorSC, gorAdmin, gorGW := procs.FreeAddr(), procs.FreeAddr(), procs.FreeAddr()
	n := 0
	startProc := func(env []string, name string, args ...string) (int, error) {
		err := g.Start(filepath.Join(dir, "proc"+strconv.Itoa(n)+".log"), env, name, args...)
		if err != nil {
			return 0, err
		}
		n++
		return g.Pid(n - 1), nil
	}
	var pids [9]int
	steps := []struct {
		env  []string
		name string
		args []string
	}{
		{[]string{"PORT=" + procs.Port(agent)}, echo, nil},
		// -request-timeout as the controller and the local runtime pass it (the agent's default).
		{nil, flint, []string{"proxy", "-serving-addr", sidecar, "-admin-addr", admin, "-upstream", agent, "-request-timeout", "300s", "-log-level", "warn"}},
		{nil, flint, []string{"gateway", "-f", agentFile, "-addr", gw, "-replica", "default/echo=" + sidecar + "@" + admin, "-log-level", "warn"}},
		{nil, self, []string{"-baseline-proxy", rp2 + "=" + agent}},
		{nil, self, []string{"-baseline-proxy", rp1 + "=" + rp2}},
		{nil, flint, []string{"proxy", "-serving-addr", capped, "-admin-addr", cappedAdmin, "-upstream", agent, "-request-timeout", "300s", "-log-level", "warn",
			"-concurrency", "4", "-queue-depth", "64"}},
		{nil, self, []string{"-baseline-epoll", epoll + "=" + agent}},
		{nil, flint, []string{"proxy", "-serving-addr", gorSC, "-admin-addr", gorAdmin, "-upstream", agent, "-request-timeout", "300s", "-log-level", "warn",
			"-event-loops", "0"}},
		{nil, flint, []string{"gateway", "-f", agentFile, "-addr", gorGW, "-replica", "default/echo=" + gorSC + "@" + gorAdmin, "-log-level", "warn",
			"-event-loops", "0"}},
	}
	for i, s := range steps {
		if pids[i], err = startProc(s.env, s.name, s.args...); err != nil {
			return nil, g.Stop, err
		}
	}
	query := ""
	if o.sleep > 0 {
		query = "?sleep=" + o.sleep.String()
	}
	agentHop := hop{name: "agent", pid: pids[0]}
	sidecarHop := hop{name: "sidecar", pid: pids[1], metrics: "http://" + admin + wire.PathMetrics}
	gatewayHop := hop{name: "gateway", pid: pids[2], metrics: "http://" + gw + "/metrics"}
	gorHop := hop{name: "sidecar", pid: pids[7], metrics: "http://" + gorAdmin + wire.PathMetrics}
	paths := []*path{
		{name: nameDirect, url: "http://" + agent + "/bench" + query, hops: []hop{agentHop}},
		{name: nameSidecar, url: "http://" + sidecar + "/bench" + query, hops: []hop{sidecarHop, agentHop}, baseline: nameNginx1, flint: true},
		{name: nameGateway, url: "http://" + gw + "/v1/agents/default/echo/bench" + query, baseline: nameNginx2, flint: true,
			hops: []hop{gatewayHop, sidecarHop, agentHop}},
		{name: nameRP2, url: "http://" + rp1 + "/bench" + query, baseline: nameNginx2,
			hops: []hop{{name: "front", pid: pids[4]}, {name: "back", pid: pids[3]}, agentHop}},
		{name: nameCapped, url: "http://" + capped + "/bench" + query, baseline: nameNginx1, flint: true,
			hops: []hop{{name: "sidecar", pid: pids[5], metrics: "http://" + cappedAdmin + wire.PathMetrics}, agentHop}},
		{name: nameEpoll, url: "http://" + epoll + "/bench" + query, baseline: nameNginx1,
			hops: []hop{{name: "relay", pid: pids[6]}, agentHop}},
		{name: nameSidecarGoroutines, url: "http://" + gorSC + "/bench" + query, baseline: nameNginx1, flint: true,
			hops: []hop{gorHop, agentHop}},
		{name: nameGatewayGoroutines, url: "http://" + gorGW + "/v1/agents/default/echo/bench" + query, baseline: nameNginx2, flint: true,
			hops: []hop{{name: "gateway", pid: pids[8], metrics: "http://" + gorGW + "/metrics"}, gorHop, agentHop}},
		{name: nameGatewayMixed, url: "http://" + gw + "/v1/agents/default/echo/bench" + query, baseline: nameNginx2Mixed, flint: true, script: mixed,
			hops: []hop{gatewayHop, sidecarHop, agentHop}},
	}
	if o.nginx {
		bin, err := nginxBinary()
		if err != nil {
			return nil, g.Stop, err
		}
		ng1, ng2 := procs.FreeAddr(), procs.FreeAddr()
		if err := startNginx(&g, bin, dir, "nginx1", ng1, agent); err != nil {
			return nil, g.Stop, err
		}
		n++
		pid1 := g.Pid(n - 1)
		if err := startNginx(&g, bin, dir, "nginx2", ng2, ng1); err != nil {
			return nil, g.Stop, err
		}
		n++
		pid2 := g.Pid(n - 1)
		nginx2Hops := []hop{{name: "nginx front", pid: pid2}, {name: "nginx back", pid: pid1}, agentHop}
		paths = append(paths,
			&path{name: nameNginx1, url: "http://" + ng1 + "/bench" + query, baseline: nameNginx1,
				hops: []hop{{name: "nginx", pid: pid1}, agentHop}},
			&path{name: nameNginx2, url: "http://" + ng2 + "/bench" + query, baseline: nameNginx2, hops: nginx2Hops},
			&path{name: nameNginx2Mixed, url: "http://" + ng2 + "/bench" + query, baseline: nameNginx2Mixed, script: mixed, hops: nginx2Hops})
	}
	for _, p := range paths {
		p.open = map[int][]result{}
		p.cpu = make([]time.Duration, len(p.hops))
		p.allocs = make([]float64, len(p.hops))
	}
	return paths, g.Stop, nil
}

const agentYAML = `apiVersion: flint.dev/v1alpha1
kind: Agent
metadata: {name: echo, namespace: default}
spec:
  container: {command: [%q], port: 8080}
`

// measureClosed runs one closed-loop measurement of p and adds the CPU time
// and allocations of its processes to p's totals.
func measureClosed(p *path, o options) error {
	cpu0, mallocs0 := make([]time.Duration, len(p.hops)), make([]float64, len(p.hops))
	for i, h := range p.hops {
		cpu0[i], _ = cpuTime(h.pid)
		mallocs0[i] = mallocs(h.metrics)
	}
	res, err := closedLoop(p.url, p.script, o.conns, o.threads, o.duration)
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	for i, h := range p.hops {
		c, err := cpuTime(h.pid)
		if err != nil {
			return fmt.Errorf("%s: CPU time of %s: %w", p.name, h.name, err)
		}
		p.cpu[i] += c - cpu0[i]
		if m := mallocs(h.metrics); m > 0 && mallocs0[i] > 0 {
			p.allocs[i] += m - mallocs0[i]
		}
	}
	p.reqs += res.requests
	p.closed = append(p.closed, res)
	return nil
}

// mallocs reads go_memstats_mallocs_total from a Prometheus endpoint; 0
// when there is none.
func mallocs(url string) float64 {
	if url == "" {
		return 0
	}
	c := http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_mallocs_total "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}
