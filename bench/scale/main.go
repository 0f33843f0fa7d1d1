// Command scale measures Flint with many agents on a real control plane
// (etcd + kube-apiserver from internal/testenv, with an audit log of
// writes): it creates Agents in several namespaces with an EndpointSlice
// each, starts the real `flint gateway` processes and `flint manager`, and
// reports manager reconcile throughput, gateway time to ready, RSS and CPU
// of every process idle and under light traffic, API writes per second by
// each process (counted at the API server), EndpointSlice → routing
// propagation latency and the demand collection cost with more gateways.
// Its output is the table of docs/scale.md (hack/bench.sh scale).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/test/cluster/podnet"
)

func main() {
	sizes := flag.String("agents", "200,2000", "comma-separated agent counts, one run each")
	namespaces := flag.Int("namespaces", 20, "namespaces the agents are spread over")
	perAgent := flag.Int("endpoints", 5, "endpoints per agent")
	gateways := flag.Int("gateways", 3, "gateways")
	more := flag.Int("more-gateways", 10, "gateways in the demand collection phase (0: skip)")
	active := flag.Int("active", 20, "agents invoked once a second during the active window")
	changes := flag.Int("changes", 200, "EndpointSlice updates for propagation latency")
	settle := flag.Duration("settle", 10*time.Second, "wait before each measurement window")
	window := flag.Duration("window", 30*time.Second, "idle and active measurement windows")
	timeout := flag.Duration("timeout", 10*time.Minute, "limit of each wait")
	prebuilt := flag.String("flint", "", "`path` of a flint binary to measure (default: build ./cmd/flint)")
	profiles := flag.String("profiles", "", "`directory` to write heap profiles of the manager and the first gateway into, after the idle, active and more-gateways windows (empty: none; the flint binary needs -pprof-addr)")
	plots := flag.String("plots", "", "`directory` to draw scale-propagation.png and scale-writes.png into (empty: none)")
	flag.Parse()
	ctrllog.SetLogger(logr.Discard())
	// Pod IPs must not be loopback addresses (the API server refuses them in
	// EndpointSlices): the run happens in a network namespace of its own
	// where 10.244.0.0/16 is local (test/cluster/podnet), after building
	// flint outside it.
	if !podnet.Inside() {
		dir, err := os.MkdirTemp("", "flint-bench-scale-bin-")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(dir)
		if *prebuilt != "" {
			b, err := os.ReadFile(*prebuilt)
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, "flint"), b, 0o755)
			}
			if err != nil {
				fatal(err)
			}
		} else if err := testenv.Build(filepath.Join(dir, "flint"), "./cmd/flint"); err != nil {
			fatal(err)
		}
		code := podnet.Run(binDirEnv + "=" + dir)
		os.RemoveAll(dir)
		os.Exit(code)
	}
	bin := filepath.Join(os.Getenv(binDirEnv), "flint")
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var results []*result
	for s := range strings.SplitSeq(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fatal(fmt.Errorf("-agents: %q is not a positive number", s))
		}
		r, err := run(ctx, config{Flint: bin, Agents: n, Namespaces: *namespaces, PerAgent: *perAgent,
			Gateways: *gateways, MoreGateways: *more, Active: min(*active, n), Changes: *changes,
			Settle: *settle, Window: *window, Timeout: *timeout, Profiles: *profiles, Log: logTo(os.Stderr)})
		if err != nil {
			fatal(fmt.Errorf("%d agents: %w", n, err))
		}
		results = append(results, r)
	}
	report(os.Stdout, results)
	if *plots != "" {
		if err := writePlots(*plots, results); err != nil {
			fatal(err)
		}
	}
}

const binDirEnv = "FLINT_BENCH_SCALE_BIN_DIR"

func logTo(w io.Writer) func(string, ...any) {
	start := time.Now()
	return func(format string, args ...any) {
		fmt.Fprintf(w, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench/scale:", err)
	os.Exit(1)
}

// report prints one markdown table: a column per run.
func report(w io.Writer, rs []*result) {
	row := func(name string, f func(*result) string) {
		fmt.Fprintf(w, "| %s |", name)
		for _, r := range rs {
			fmt.Fprintf(w, " %s |", f(r))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, "| |")
	for _, r := range rs {
		fmt.Fprintf(w, " %d agents |", r.Agents)
	}
	fmt.Fprint(w, "\n|---|")
	for range rs {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
	row("namespaces / endpoints / gateways", func(r *result) string {
		return fmt.Sprintf("%d / %d / %d", r.Namespaces, r.Endpoints, r.Gateways)
	})
	row("create Agents + slices (bench client)", func(r *result) string {
		return fmt.Sprintf("%.1f s (%.0f/s)", r.Populate.Seconds(), float64(r.Agents)/r.Populate.Seconds())
	})
	row("manager: start → every Deployment", func(r *result) string {
		return fmt.Sprintf("%.1f s (%.0f agents/s)", r.Reconcile.Seconds(), float64(r.Agents)/r.Reconcile.Seconds())
	})
	row("manager: start → last write (statuses)", func(r *result) string {
		return fmt.Sprintf("%.1f s", r.Converge.Seconds())
	})
	row("gateway: start → ready, all agents listed (max)", func(r *result) string {
		return fmt.Sprintf("%.2f s", slices.Max(r.GatewayReady).Seconds())
	})
	row("RSS manager (max)", func(r *result) string { return fmt.Sprintf("%.0f MiB", r.RSS["manager"]) })
	row("RSS gateway (max of all)", func(r *result) string { return fmt.Sprintf("%.0f MiB", maxOf(r.RSS, "gateway-")) })
	row("goroutines manager (max)", func(r *result) string { return fmt.Sprintf("%d", r.ManagerGoroutines) })
	row("slice change → routed, p50", func(r *result) string { return ms(percentile(r.Propagation, .5)) })
	row("slice change → routed, p99", func(r *result) string { return ms(percentile(r.Propagation, .99)) })
	row("slice change → routed, max", func(r *result) string { return ms(percentile(r.Propagation, 1)) })
	row("idle CPU manager", func(r *result) string { return pct(r.Idle.cpu["manager"]) })
	row("idle CPU gateway (max)", func(r *result) string { return pct(maxOf(r.Idle.cpu, "gateway-")) })
	row("idle API writes/s manager", func(r *result) string { return perSec(r.Idle, "manager") })
	row("idle API writes/s gateways (sum)", func(r *result) string { return perSec(r.Idle, "gateway-") })
	row("active agents (1 req/s each, round-robin over gateways)", func(r *result) string {
		return fmt.Sprintf("%d (%d ok, %d failed)", r.activeAgents(), r.ActiveOK, r.ActiveFailed)
	})
	row("active API writes/s manager", func(r *result) string { return perSec(r.Active, "manager") })
	row("active API writes/s gateways (sum)", func(r *result) string { return perSec(r.Active, "gateway-") })
	row("active writes per agent per 10 s (all Flint)", func(r *result) string {
		if r.activeAgents() == 0 {
			return "–"
		}
		total := float64(sumOf(r.Active.writes, "manager") + sumOf(r.Active.writes, "gateway-"))
		return fmt.Sprintf("%.2f", total/r.Active.dur.Seconds()*10/float64(r.activeAgents()))
	})
	row("active writes per agent per 10 s, more gateways", func(r *result) string {
		if r.MoreActive == nil || r.activeAgents() == 0 {
			return "–"
		}
		total := float64(sumOf(r.MoreActive.writes, "manager") + sumOf(r.MoreActive.writes, "gateway-"))
		return fmt.Sprintf("%.2f with %d", total/r.MoreActive.dur.Seconds()*10/float64(r.activeAgents()), r.MoreGateways)
	})
	row("active CPU manager / gateway (max)", func(r *result) string {
		return pct(r.Active.cpu["manager"]) + " / " + pct(maxOf(r.Active.cpu, "gateway-"))
	})
	row("autoscaler decisions/s (idle)", func(r *result) string {
		return fmt.Sprintf("%.0f", r.DecisionCount/r.Idle.dur.Seconds())
	})
	row("autoscaler decision time, mean / per second of wall", func(r *result) string {
		if r.DecisionCount == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f ms / %.0f ms", r.DecisionSum/r.DecisionCount*1e3, r.DecisionSum/r.Idle.dur.Seconds()*1e3)
	})
	row("idle CPU manager / gateway (max), more gateways", func(r *result) string {
		if r.More == nil {
			return "–"
		}
		return fmt.Sprintf("%s / %s with %d", pct(r.More.cpu["manager"]), pct(maxOf(r.More.cpu, "gateway-")), r.MoreGateways)
	})
}

func (r *result) activeAgents() int { return r.ActiveAgents }

func pct(v float64) string { return fmt.Sprintf("%.1f%%", v*100) }

func perSec(w window, prefix string) string {
	if w.dur == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", float64(sumOf(w.writes, prefix))/w.dur.Seconds())
}

func sumOf[V int | float64](m map[string]V, prefix string) V {
	var s V
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			s += v
		}
	}
	return s
}

func maxOf(m map[string]float64, prefix string) float64 {
	var out float64
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			out = max(out, v)
		}
	}
	return out
}
