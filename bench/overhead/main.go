// Command overhead measures what Flint's data plane adds to a request, side
// by side with nginx: the echo agent called directly, through one and two
// nginx reverse-proxy hops, through Flint's sidecar, through gateway +
// sidecar, and through a plain two-hop httputil.ReverseProxy chain, all as
// separate processes on loopback. Each round measures every path in turn
// (rounds interleave, so drifting machine load hits every path alike):
//
//   - closed loop (wrk: a fixed number of keep-alive connections, each
//     sending its next request when the last is answered): maximum
//     throughput and its latency, the CPU time each process spent per
//     request (user+sys from /proc/<pid>/stat over the run), and the
//     allocations per request of Flint's processes (go_memstats_mallocs_total);
//   - open loop (vegeta: fixed rates, whether or not earlier requests have
//     been answered): latency at moderate load.
//
// Before the processes start it also runs the in-process Go benchmarks for
// allocations and bytes per request. Ratios are to nginx with the same
// number of hops.
//
//	go run ./bench/overhead                      # the full run (about 10 minutes)
//	go run ./bench/overhead -quick               # a smoke test of the harness (under a minute)
//	go run ./bench/overhead -doc docs/benchmarks.md   # also rewrite the doc's table
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// options are the run's settings; see the flags for their meaning.
type options struct {
	repo      string
	duration  time.Duration
	warmup    time.Duration
	rounds    int
	conns     int
	threads   int
	rates     []int
	sleep     time.Duration
	nginx     bool
	gobench   bool
	benchtime string
	doc       string
}

func main() {
	if reexecuted() {
		return
	}
	o, err := parseFlags(flag.CommandLine, os.Args[1:])
	if err != nil {
		log.Fatal(err)
	}
	if _, err := run(o, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func parseFlags(fs *flag.FlagSet, args []string) (options, error) {
	var o options
	rates := fs.String("rates", "1000,4000", "fixed request rates (per second) for the open-loop latency table")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measurement (whole seconds for the closed loop)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "load on each path before the first round (connection pools, GC)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each measures every path once, in a rotated order")
	fs.IntVar(&o.conns, "conns", 32, "connections for the closed loop")
	fs.IntVar(&o.threads, "threads", 2, "wrk threads for the closed loop")
	fs.DurationVar(&o.sleep, "sleep", 0, "time the agent takes per request (e.g. 100ms)")
	fs.BoolVar(&o.nginx, "nginx", true, "include the nginx paths (needs nginx: apt-get install nginx-light)")
	fs.BoolVar(&o.gobench, "gobench", true, "run the in-process Go benchmarks for allocations per request")
	fs.StringVar(&o.benchtime, "benchtime", "2s", "-benchtime of the Go benchmarks")
	fs.StringVar(&o.repo, "repo", ".", "repository root (to build flint and the echo agent)")
	fs.StringVar(&o.doc, "doc", "", "also replace the generated section of this Markdown file (docs/benchmarks.md)")
	quick := fs.Bool("quick", false, "a smoke test of the harness: 1 round of 1s, one rate, short Go benchmarks")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *quick {
		o.duration, o.warmup, o.rounds, o.benchtime = time.Second, 200*time.Millisecond, 1, "200x"
		if !flagSet(fs, "rates") {
			*rates = "500"
		}
	}
	for _, r := range strings.Split(*rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n <= 0 {
			return o, fmt.Errorf("-rates: %q is not a positive number", r)
		}
		o.rates = append(o.rates, n)
	}
	if o.rounds < 1 || o.conns < 1 || o.threads < 1 || o.threads > o.conns || o.duration < time.Second {
		return o, fmt.Errorf("need -rounds ≥ 1, 1 ≤ -threads ≤ -conns and -duration ≥ 1s")
	}
	return o, nil
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// reexecuted serves as one of the harness's own hops when the harness
// re-executed itself as one: -baseline-proxy LISTEN=UPSTREAM (a stock
// ReverseProxy) or -baseline-epoll LISTEN=UPSTREAM (the Go epoll relay, one
// loop per CPU as nginx has one worker per core). It returns false for a
// normal run.
func reexecuted() bool {
	if len(os.Args) != 3 {
		return false
	}
	switch os.Args[1] {
	case "-baseline-proxy":
		serveBaseline(os.Args[2])
	case "-baseline-epoll":
		listen, upstream, _ := strings.Cut(os.Args[2], "=")
		log.Fatal(serveEventLoop(listen, upstream, runtime.NumCPU()))
	default:
		return false
	}
	return true
}

// serveBaseline is one hop of the baseline chain: a stock ReverseProxy.
func serveBaseline(spec string) {
	listen, upstream, _ := strings.Cut(spec, "=")
	u := &url.URL{Scheme: "http", Host: upstream}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() }}
	log.Fatal(http.ListenAndServe(listen, rp))
}
