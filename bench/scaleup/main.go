// Command scaleup measures how fast capacity follows a step of load in
// local mode: `flint up` runs the echo agent (concurrency 10, 100 ms per
// request) at a low rate, then the rate jumps 20x. It reports the time
// until the ready replicas cover the new load, and every answer other than
// 200 meanwhile (503 + Retry-After counted apart from real failures).
//
//	go run ./bench/scaleup -base-rate 20 -factor 20
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/flint-dev/flint/bench/internal/procs"
)

func main() {
	baseRate := flag.Int("base-rate", 20, "requests per second before the step")
	factor := flag.Int("factor", 20, "the step multiplies the rate by this")
	before := flag.Duration("before", 15*time.Second, "time at the base rate")
	after := flag.Duration("after", 40*time.Second, "time at the stepped rate")
	sleep := flag.Duration("sleep", 100*time.Millisecond, "time the agent takes per request")
	repo := flag.String("repo", ".", "repository root")
	flag.Parse()
	if err := run(*repo, *baseRate, *factor, *before, *after, *sleep); err != nil {
		log.Fatal(err)
	}
}

const agentYAML = `apiVersion: flint.dev/v1alpha1
kind: Agent
metadata: {name: echo}
spec:
  container: {command: [%q], port: 8080, readinessProbe: {httpGet: {path: /healthz, port: 8080}}}
  concurrency: 10
  scaling: {minReplicas: 1, maxReplicas: 50}
`

type sample struct {
	at    time.Duration
	ready int
}

func run(repo string, baseRate, factor int, before, after, sleep time.Duration) error {
	dir, err := os.MkdirTemp("", "flint-scaleup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	flint, echo, err := procs.Build(repo, dir)
	if err != nil {
		return err
	}
	file := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(agentYAML, echo)), 0o644); err != nil {
		return err
	}
	gw := procs.FreeAddr()
	var g procs.Group
	defer g.Stop()
	if err := g.Start(filepath.Join(dir, "flint.log"), nil, flint, "up", "-f", file, "-addr", gw, "-log-level", "warn"); err != nil {
		return err
	}
	url := fmt.Sprintf("http://%s/v1/agents/default/echo/work?sleep=%s", gw, sleep)
	if err := procs.WaitOK(url, 30*time.Second); err != nil {
		return err
	}

	// Replicas needed for the stepped load at the default target (70% of concurrency).
	highRate := baseRate * factor
	need := int(math.Ceil(float64(highRate) * sleep.Seconds() / 7))

	start := time.Now()
	var mu sync.Mutex
	var samples []sample
	stopPoll := make(chan struct{})
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopPoll:
				return
			case <-t.C:
				if n, err := readyReplicas(gw); err == nil {
					mu.Lock()
					samples = append(samples, sample{time.Since(start), n})
					mu.Unlock()
				}
			}
		}
	}()

	low := attack(url, baseRate, before)
	stepAt := time.Since(start)
	high := attack(url, highRate, after)
	close(stopPoll)

	reached := time.Duration(-1)
	for _, s := range samples {
		if s.at >= stepAt && s.ready >= need {
			reached = s.at - stepAt
			break
		}
	}
	fmt.Printf("# Scale-up: %d -> %d req/s (x%d), agent %s/request, concurrency 10, target 7\n\n", baseRate, highRate, factor, sleep)
	fmt.Printf("| measure | value |\n| --- | ---: |\n")
	fmt.Printf("| replicas needed after the step | %d |\n", need)
	if reached >= 0 {
		fmt.Printf("| time from the step until ready replicas >= needed | %.1fs |\n", reached.Seconds())
	} else {
		fmt.Printf("| time from the step until ready replicas >= needed | not reached in %s |\n", after)
	}
	fmt.Printf("| max ready replicas | %d |\n", maxReady(samples))
	for _, p := range []struct {
		name string
		m    *vegeta.Metrics
	}{{"before the step", low}, {"after the step", high}} {
		other := 0
		for code, n := range p.m.StatusCodes {
			if code != "200" && code != "503" {
				other += n
			}
		}
		fmt.Printf("| %s: requests / 503 / other failures / p50 / p99 | %d / %d / %d / %s / %s |\n", p.name,
			p.m.Requests, p.m.StatusCodes["503"], other, p.m.Latencies.P50.Round(time.Millisecond), p.m.Latencies.P99.Round(time.Millisecond))
	}
	return nil
}

func attack(url string, rate int, d time.Duration) *vegeta.Metrics {
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: url})
	atk := vegeta.NewAttacker(vegeta.Timeout(30*time.Second), vegeta.MaxWorkers(2000))
	var m vegeta.Metrics
	for res := range atk.Attack(tr, vegeta.Rate{Freq: rate, Per: time.Second}, d, "step") {
		m.Add(res)
	}
	m.Close()
	return &m
}

func readyReplicas(gw string) (int, error) {
	res, err := http.Get("http://" + gw + "/v1/agents")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var list []struct {
		Name          string `json:"name"`
		ReadyReplicas int    `json:"readyReplicas"`
	}
	if err := json.NewDecoder(res.Body).Decode(&list); err != nil {
		return 0, err
	}
	for _, a := range list {
		if a.Name == "echo" {
			return a.ReadyReplicas, nil
		}
	}
	return 0, fmt.Errorf("echo not listed")
}

func maxReady(s []sample) int {
	m := 0
	for _, x := range s {
		m = max(m, x.ready)
	}
	return m
}
