// Command coldstart measures scale-from-zero in local mode: N agents, all
// at zero replicas, each invoked once through `flint up`; the time from
// sending the request to its first response byte, against the time the
// echo agent takes to start and answer on its own.
//
//	go run ./bench/coldstart -n 10
package main

import (
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
)

func main() {
	n := flag.Int("n", 10, "number of cold starts to measure")
	repo := flag.String("repo", ".", "repository root")
	flag.Parse()
	if err := run(*repo, *n); err != nil {
		log.Fatal(err)
	}
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
	var g procs.Group
	defer g.Stop()
	if err := g.Start(filepath.Join(dir, "flint.log"), nil, flint, "up", "-f", file, "-addr", gw, "-log-level", "warn"); err != nil {
		return err
	}
	if err := procs.WaitOK("http://"+gw+"/healthz", 30*time.Second); err != nil {
		return err
	}
	var cold, held []time.Duration
	client := &http.Client{Timeout: time.Minute}
	for i := range n {
		var firstByte time.Time
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/v1/agents/default/echo-%d/", gw, i), nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotFirstResponseByte: func() { firstByte = time.Now() },
		}))
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("echo-%d answered %d", i, res.StatusCode)
		}
		cold = append(cold, firstByte.Sub(start))
		h, _ := time.ParseDuration(res.Header.Get("X-Flint-Cold-Start-Wait"))
		held = append(held, h)
	}
	fmt.Printf("# Cold start, local mode (%d samples)\n\n", n)
	fmt.Println("| measure | p50 | min | max |")
	fmt.Println("| --- | ---: | ---: | ---: |")
	row("agent alone: exec to first answer", alone)
	row("flint: request at zero to first byte", cold)
	row("flint: time held by the gateway", held)
	fmt.Printf("\nOverhead over the agent's own start (p50): %s\n", ms(median(cold)-median(alone)))
	return nil
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
	fmt.Printf("| %s | %s | %s | %s |\n", name, ms(median(ds)), ms(slices.Min(ds)), ms(slices.Max(ds)))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
