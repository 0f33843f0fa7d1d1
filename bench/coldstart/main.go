// Command coldstart measures scale-from-zero in local mode: N agents, all
// at zero replicas, each invoked once through `flint up`; the time from
// sending the request to its first response byte, against the time the
// echo agent takes to start and answer on its own, and where that time
// goes, phase by phase.
//
//	go run ./bench/coldstart -n 10
//
// The phases come from flint's own debug log (JSON, nanosecond timestamps
// on the same clock as this program's): the gateway logs when it starts
// and stops holding a request, the local runtime when it is asked for a
// replica, when the agent's process has started, when the replica's
// sidecar sees the agent answer its probe, and when the ready endpoint is
// published. See docs/benchmarks.md.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flint-dev/flint/bench/internal/procs"
	"github.com/flint-dev/flint/internal/wire"
)

func main() {
	n := flag.Int("n", 10, "number of cold starts to measure")
	repo := flag.String("repo", ".", "repository root")
	flag.Parse()
	if err := run(*repo, *n); err != nil {
		log.Fatal(err)
	}
}

// sample is one cold start as the client saw it.
type sample struct {
	agent           string // namespace/name, as flint logs it
	sent, firstByte time.Time
	held            time.Duration // X-Flint-Cold-Start-Wait
	warm            time.Duration // a second request, once the agent is up
}

func run(repo string, n int) error {
	dir, err := os.MkdirTemp("", "flint-coldstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	flint, echo, err := procs.Build(repo, dir)
	if err != nil {
		return err
	}

	// Baseline: the agent alone, from exec to its first answer.
	var alone []time.Duration
	for i := range n {
		addr := procs.FreeAddr()
		var g procs.Group
		start := time.Now()
		if err := g.Start(filepath.Join(dir, fmt.Sprintf("alone%d.log", i)), []string{"PORT=" + procs.Port(addr)}, echo); err != nil {
			return err
		}
		if err := pollFast("http://" + addr + "/healthz"); err != nil {
			g.Stop()
			return err
		}
		alone = append(alone, time.Since(start))
		g.Stop()
	}

	var yaml strings.Builder
	for i := range n {
		fmt.Fprintf(&yaml, "apiVersion: flint.dev/v1alpha1\nkind: Agent\nmetadata: {name: echo-%d}\nspec:\n  container: {command: [%q], port: 8080, readinessProbe: {httpGet: {path: /healthz, port: 8080}}}\n---\n", i, echo)
	}
	file := filepath.Join(dir, "agents.yaml")
	if err := os.WriteFile(file, []byte(yaml.String()), 0o644); err != nil {
		return err
	}
	gw := procs.FreeAddr()
	logFile := filepath.Join(dir, "flint.log")
	var g procs.Group
	defer g.Stop()
	// Debug level, JSON: the phase timestamps are debug lines, and JSON
	// carries them to the nanosecond.
	if err := g.Start(logFile, nil, flint, "up", "-f", file, "-addr", gw, "-log-level", "debug", "-log-format", "json"); err != nil {
		return err
	}
	if err := procs.WaitOK("http://"+gw+"/healthz", 30*time.Second); err != nil {
		return err
	}
	var samples []sample
	client := &http.Client{Timeout: time.Minute}
	for i := range n {
		// Let the previous agent's start-up settle so samples do not overlap.
		time.Sleep(100 * time.Millisecond)
		s := sample{agent: fmt.Sprintf("default/echo-%d", i)}
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/v1/agents/default/echo-%d/", gw, i), nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotFirstResponseByte: func() { s.firstByte = time.Now() },
		}))
		s.sent = time.Now()
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("echo-%d answered %d", i, res.StatusCode)
		}
		s.held, _ = time.ParseDuration(res.Header.Get(wire.HeaderColdStartWait))
		// The same agent again, warm, after the same pause: what the proxy
		// phase costs on connections that are already open.
		time.Sleep(100 * time.Millisecond)
		if s.warm, err = firstByte(client, req.URL.String()); err != nil {
			return err
		}
		samples = append(samples, s)
	}
	events, err := readEvents(logFile)
	if err != nil {
		return err
	}

	var cold, held, warm []time.Duration
	for _, s := range samples {
		cold = append(cold, s.firstByte.Sub(s.sent))
		held = append(held, s.held)
		warm = append(warm, s.warm)
	}
	fmt.Printf("# Cold start, local mode (%d samples)\n\n", n)
	fmt.Println("| measure | p50 | p90 | min | max |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: |")
	row("agent alone: exec to first answer", alone)
	row("flint: request at zero to first byte", cold)
	row("flint: time held by the gateway (X-Flint-Cold-Start-Wait)", held)
	row("flint: the same agent warm (after the same 100 ms pause), request to first byte", warm)
	fmt.Printf("\nOverhead over the agent's own start (p50): %s\n\n", ms(quantile(cold, 0.5)-quantile(alone, 0.5)))
	return breakdown(samples, events, alone)
}

// Debug log messages that mark the phases (internal/gateway/hold.go,
// internal/platform/local).
const (
	evHold      = "cold start: holding request" // gateway: a request arrived with no ready replica
	evScale     = "scale set"                   // local runtime: SetScale from the autoscaler
	evProcess   = "agent process started"       // local runtime: exec of the agent returned
	evReady     = "replica readiness changed"   // sidecar: the agent answered its readiness probe
	evPublished = "ready endpoints changed"     // local runtime: the endpoint is published to the gateway
	evHoldEnded = "cold start: hold ended"      // gateway: the held request woke up
)

type logLine struct {
	Time      time.Time `json:"time"`
	Msg       string    `json:"msg"`
	Agent     string    `json:"agent"`
	Ready     *bool     `json:"ready"`
	Endpoints *int      `json:"endpoints"`
}

// readEvents collects, per agent, the times of the phase-marking lines:
// the first of each, except the hold's end, of which the last counts (a
// held request may wake for a change that leaves the agent unready).
func readEvents(file string) (map[string]map[string]time.Time, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	events := map[string]map[string]time.Time{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' { // agents' own output is interleaved
			continue
		}
		var l logLine
		if json.Unmarshal(line, &l) != nil || l.Agent == "" {
			continue
		}
		switch {
		case l.Msg == evReady && (l.Ready == nil || !*l.Ready):
			continue
		case l.Msg == evPublished && (l.Endpoints == nil || *l.Endpoints == 0):
			continue
		}
		m := events[l.Agent]
		if m == nil {
			m = map[string]time.Time{}
			events[l.Agent] = m
		}
		if _, seen := m[l.Msg]; !seen || l.Msg == evHoldEnded {
			m[l.Msg] = l.Time
		}
	}
	return events, sc.Err()
}

// phase is a span between two marks; "sent" and "firstByte" are the
// client's own.
type phase struct {
	name, from, to string
	sub            bool
}

var phases = []phase{
	{"hold", "sent", evScale, false},
	{"client to gateway hold", "sent", evHold, true},
	{"process start", evScale, evProcess, false},
	{"readiness", evProcess, evHoldEnded, false},
	{"agent start + probe", evProcess, evReady, true},
	{"publish", evReady, evPublished, true},
	{"gateway wakes", evPublished, evHoldEnded, true},
	{"proxy", evHoldEnded, "firstByte", false},
	{"total", "sent", "firstByte", false},
}

var markNames = map[string]string{
	"sent": "request sent", "firstByte": "first byte at the client",
	evHold: "gateway holds it", evScale: "scale set on the runtime",
	evProcess: "agent process started", evReady: "sidecar's probe answered",
	evPublished: "endpoint published", evHoldEnded: "held request wakes",
}

func breakdown(samples []sample, events map[string]map[string]time.Time, alone []time.Duration) error {
	durations := make([][]time.Duration, len(phases))
	for _, s := range samples {
		marks := map[string]time.Time{"sent": s.sent, "firstByte": s.firstByte}
		for k, v := range events[s.agent] {
			marks[k] = v
		}
		for i, p := range phases {
			from, ok1 := marks[p.from]
			to, ok2 := marks[p.to]
			if !ok1 || !ok2 {
				return fmt.Errorf("%s: no %q or %q in flint's log: has its debug logging changed? (bench/coldstart reads it)", s.agent, p.from, p.to)
			}
			if to.Before(from) {
				return errors.New(s.agent + ": phase " + p.name + " ends before it starts: did the wall clock step during the run?")
			}
			durations[i] = append(durations[i], to.Sub(from))
		}
	}
	fmt.Println("## Where the time goes: request at zero to first byte")
	fmt.Println()
	fmt.Println("| phase | from → to | p50 | p90 |")
	fmt.Println("| --- | --- | ---: | ---: |")
	for i, p := range phases {
		name := p.name
		if p.sub {
			name = "&nbsp;&nbsp;of which: " + name
		} else {
			name = "**" + name + "**"
		}
		fmt.Printf("| %s | %s → %s | %s | %s |\n", name, markNames[p.from], markNames[p.to],
			ms(quantile(durations[i], 0.5)), ms(quantile(durations[i], 0.9)))
	}
	probe := durations[slices.IndexFunc(phases, func(p phase) bool { return p.name == "agent start + probe" })]
	fmt.Printf("\nPhases are quantiles of each span on its own, so they need not add up to the total's.\n"+
		"Agent start + probe detection minus the agent's own exec-to-first-answer (p50): %s.\n",
		ms(quantile(probe, 0.5)-quantile(alone, 0.5)))
	return nil
}

// firstByte times one GET from sending to the first response byte.
func firstByte(c *http.Client, url string) (time.Duration, error) {
	var first time.Time
	req, _ := http.NewRequest("GET", url, nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotFirstResponseByte: func() { first = time.Now() },
	}))
	start := time.Now()
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		return 0, fmt.Errorf("%s answered %d", url, res.StatusCode)
	}
	return first.Sub(start), nil
}

// pollFast polls url every millisecond, so the baseline is not rounded up.
func pollFast(url string) error {
	c := &http.Client{Timeout: 100 * time.Millisecond}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := c.Get(url); err == nil {
			res.Body.Close()
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("%s never answered", url)
}

func row(name string, ds []time.Duration) {
	fmt.Printf("| %s | %s | %s | %s | %s |\n", name, ms(quantile(ds, 0.5)), ms(quantile(ds, 0.9)), ms(slices.Min(ds)), ms(slices.Max(ds)))
}

// quantile is the nearest-rank quantile q of ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
