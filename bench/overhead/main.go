// Command overhead measures what Flint's data plane adds to a request: the
// echo agent called directly, through the sidecar only, through gateway +
// sidecar, and through a plain two-hop httputil.ReverseProxy chain as a
// baseline, all as separate processes on loopback, under the same
// open-loop load (vegeta), at fixed rates and at maximum throughput.
//
//	go run ./bench/overhead -rates 500,1000,2000 -duration 10s
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flint-dev/flint/bench/internal/procs"
)

func main() {
	// Re-executed as a baseline proxy hop: -baseline-proxy LISTEN=UPSTREAM.
	if len(os.Args) == 3 && os.Args[1] == "-baseline-proxy" {
		serveBaseline(os.Args[2])
		return
	}
	rates := flag.String("rates", "500,1000,2000", "fixed request rates (per second) to measure latency at")
	duration := flag.Duration("duration", 10*time.Second, "length of each measurement")
	sleep := flag.Duration("sleep", 0, "time the agent takes per request (e.g. 100ms)")
	maxWorkers := flag.Int("max-workers", 64, "concurrent connections for the maximum-throughput run")
	repo := flag.String("repo", ".", "repository root (to build flint and the echo agent)")
	flag.Parse()

	if err := run(*repo, *rates, *duration, *sleep, *maxWorkers); err != nil {
		log.Fatal(err)
	}
}

func run(repo, rateList string, duration, sleep time.Duration, maxWorkers int) error {
	dir, err := os.MkdirTemp("", "flint-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	flint, echo, err := procs.Build(repo, dir)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var g procs.Group
	defer g.Stop()

	agent, sidecar, admin, gw := procs.FreeAddr(), procs.FreeAddr(), procs.FreeAddr(), procs.FreeAddr()
	hop1, hop2 := procs.FreeAddr(), procs.FreeAddr()
	agentFile := filepath.Join(dir, "echo.yaml")
	if err := os.WriteFile(agentFile, []byte(fmt.Sprintf(agentYAML, echo)), 0o644); err != nil {
		return err
	}
	steps := [][]string{
		{"PORT=" + procs.Port(agent), echo},
		{"", flint, "proxy", "-serving-addr", sidecar, "-admin-addr", admin, "-upstream", agent, "-log-level", "warn"},
		{"", flint, "gateway", "-f", agentFile, "-addr", gw, "-replica", "default/echo=" + sidecar + "@" + admin, "-log-level", "warn"},
		{"", self, "-baseline-proxy", hop2 + "=" + agent},
		{"", self, "-baseline-proxy", hop1 + "=" + hop2},
	}
	for i, s := range steps {
		var env []string
		if s[0] != "" {
			env = []string{s[0]}
		}
		if err := g.Start(filepath.Join(dir, "proc"+strconv.Itoa(i)+".log"), env, s[1], s[2:]...); err != nil {
			return err
		}
	}
	query := ""
	if sleep > 0 {
		query = "?sleep=" + sleep.String()
	}
	targets := []target{
		{"direct", "http://" + agent + "/bench" + query},
		{"sidecar", "http://" + sidecar + "/bench" + query},
		{"gateway+sidecar", "http://" + gw + "/v1/agents/default/echo/bench" + query},
		{"ReverseProxy x2", "http://" + hop1 + "/bench" + query},
	}
	for _, t := range targets {
		if err := procs.WaitOK(t.url, 30*time.Second); err != nil {
			return err
		}
	}

	fmt.Printf("# Data-plane overhead (agent sleep %s, %s per run, GOMAXPROCS %s)\n\n", sleep, duration, os.Getenv("GOMAXPROCS"))
	fmt.Println("| path | rate/s | p50 | p90 | p99 | max | success |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	results := map[string]map[int]result{}
	for _, r := range strings.Split(rateList, ",") {
		rate, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil {
			return fmt.Errorf("-rates: %q is not a number", r)
		}
		for _, t := range targets {
			res := attack(t.url, rate, duration, 0)
			if results[t.name] == nil {
				results[t.name] = map[int]result{}
			}
			results[t.name][rate] = res
			fmt.Printf("| %s | %d | %s | %s | %s | %s | %.4f |\n", t.name, rate, ms(res.p50), ms(res.p90), ms(res.p99), ms(res.max), res.success)
		}
	}
	fmt.Println()
	fmt.Println("| path | max throughput (req/s) | p50 at max | success |")
	fmt.Println("| --- | ---: | ---: | ---: |")
	max := map[string]result{}
	for _, t := range targets {
		res := attack(t.url, 0, duration, maxWorkers)
		max[t.name] = res
		fmt.Printf("| %s | %.0f | %s | %.4f |\n", t.name, res.throughput, ms(res.p50), res.success)
	}
	fmt.Println()
	fmt.Println("Added by gateway+sidecar over direct, per rate (p50 / p99):")
	for _, r := range strings.Split(rateList, ",") {
		rate, _ := strconv.Atoi(strings.TrimSpace(r))
		d, c := results["direct"][rate], results["gateway+sidecar"][rate]
		fmt.Printf("- %d/s: +%s / +%s\n", rate, ms(c.p50-d.p50), ms(c.p99-d.p99))
	}
	fmt.Printf("\nThroughput ratio gateway+sidecar / ReverseProxy x2: %.2f\n", max["gateway+sidecar"].throughput/max["ReverseProxy x2"].throughput)
	return nil
}

type target struct{ name, url string }

const agentYAML = `apiVersion: flint.dev/v1alpha1
kind: Agent
metadata: {name: echo, namespace: default}
spec:
  container: {command: [%q], port: 8080}
`

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }

// serveBaseline is one hop of the baseline chain: a stock ReverseProxy.
func serveBaseline(spec string) {
	listen, upstream, _ := strings.Cut(spec, "=")
	u := &url.URL{Scheme: "http", Host: upstream}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() }}
	log.Fatal(http.ListenAndServe(listen, rp))
}
