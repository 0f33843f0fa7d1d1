package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
)

const (
	servingPort = v1alpha1.ServingPort
	adminPort   = v1alpha1.AdminPort
)

// config is one benchmark run's size.
type config struct {
	Flint        string // the flint binary
	Agents       int
	Namespaces   int
	PerAgent     int // endpoints per agent
	Gateways     int
	MoreGateways int // second phase: demand collection with this many gateways (0: skip)
	Active       int // agents invoked during the active window, on fake sidecars
	Changes      int // EndpointSlice updates for the propagation latency
	Settle       time.Duration
	Window       time.Duration // idle and active measurement windows
	Timeout      time.Duration // for each wait (Deployments, readiness)
	Profiles     string        // directory for heap profiles of the manager and the first gateway (empty: none)
	Log          func(format string, args ...any)
}

// result is what one run measured.
type result struct {
	Agents, Namespaces, Endpoints, Gateways int
	Populate                                time.Duration // creating Agents + slices
	Reconcile                               time.Duration // manager start → every Deployment exists
	Converge                                time.Duration // manager start → its last write
	GatewayReady                            []time.Duration
	RSS                                     map[string]float64 // MiB, max seen
	Idle, Active                            window
	ActiveAgents, ActiveOK, ActiveFailed    int
	Propagation                             []time.Duration // sorted
	DecisionSum, DecisionCount              float64         // autoscaler decisions over the idle window
	More                                    *window         // with MoreGateways gateways
	MoreActive                              *window         // the active window with MoreGateways gateways
	TotalWrites                             map[string]int  // API writes by user over the whole run
	MoreGateways                            int
	ManagerGoroutines                       int // max seen at the phases' ends
}

func (r *result) noteRSS(procs []*proc) {
	for _, p := range procs {
		if v, err := p.rssMiB(); err == nil && v > r.RSS[p.name] {
			r.RSS[p.name] = v
		}
	}
}

// logMemory logs the manager's and the first gateway's RSS, Go heap in use
// and goroutines: where memory goes, phase by phase.
func (r *result) logMemory(logf func(string, ...any), phase string, manager *proc, managerMetrics string, g *gateway) {
	rm, _ := manager.rssMiB()
	rg, _ := g.rssMiB()
	mh, _ := gaugeValue(managerMetrics, "go_memstats_heap_inuse_bytes")
	mg, _ := gaugeValue(managerMetrics, "go_goroutines")
	gh, _ := gaugeValue(g.url+"/metrics", "go_memstats_heap_inuse_bytes")
	gg, _ := gaugeValue(g.url+"/metrics", "go_goroutines")
	r.ManagerGoroutines = max(r.ManagerGoroutines, int(mg))
	logf("memory %s: manager RSS %.0f MiB heap %.0f MiB %0.f goroutines; %s RSS %.0f MiB heap %.0f MiB %.0f goroutines",
		phase, rm, mh/(1<<20), mg, g.name, rg, gh/(1<<20), gg)
	logf("memory %s: manager %s", phase, memstats(managerMetrics))
}

// memstats says where a process's memory is, from its Go runtime metrics:
// the heap in use, idle but still resident (idle minus released), returned
// to the OS, the GC's next goal, the live heap at the last collection's
// end, goroutine stacks and everything the runtime got from the OS.
func memstats(metricsURL string) string {
	mib := func(name string) float64 {
		v, _ := gaugeValue(metricsURL, name)
		return v / (1 << 20)
	}
	idle, released := mib("go_memstats_heap_idle_bytes"), mib("go_memstats_heap_released_bytes")
	return fmt.Sprintf("heap in use %.0f MiB, idle resident %.0f MiB, released %.0f MiB, next GC %.0f MiB, GOMEMLIMIT %.0f MiB, stacks %.0f MiB, sys %.0f MiB",
		mib("go_memstats_heap_inuse_bytes"), idle-released, released, mib("go_memstats_next_gc_bytes"),
		mib("go_gc_gomemlimit_bytes"), mib("go_memstats_stack_inuse_bytes"), mib("go_memstats_sys_bytes"))
}

// saveHeaps writes the heap profiles of procs into cfg.Profiles as
// {agents}-{phase}-{name}.heap.pb.gz.
func saveHeaps(cfg config, logf func(string, ...any), phase string, procs ...*proc) {
	if cfg.Profiles == "" {
		return
	}
	for _, p := range procs {
		if err := p.saveHeap(cfg.Profiles, fmt.Sprintf("%d-%s-%s.heap.pb.gz", cfg.Agents, phase, p.name)); err != nil {
			logf("%v", err)
		}
	}
}

// managerGOMEMLIMIT is the soft memory limit the manager sets itself in the
// chart's default pod: 90% of its container's memory limit
// (deploy/helm/flint/values.yaml, manager.resources.limits.memory, 512Mi;
// internal/cli/gc.go). The benchmark's processes run in no such cgroup.
const managerGOMEMLIMIT = "GOMEMLIMIT=483183820"

// run measures one size on a control plane of its own.
func run(ctx context.Context, cfg config) (res *result, err error) {
	logf := cfg.Log
	dir, err := os.MkdirTemp("", "flint-bench-scale-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	env, auditLog, err := startControlPlane(dir)
	if err != nil {
		return nil, err
	}
	stops = append(stops, func() { _ = env.Stop() })
	restCfg := *env.Config
	restCfg.QPS, restCfg.Burst = 1000, 2000
	kube, err := kubernetes.NewForConfig(&restCfg)
	if err != nil {
		return nil, err
	}
	c, err := client.New(&restCfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		return nil, err
	}

	res = &result{Agents: cfg.Agents, Namespaces: cfg.Namespaces, Endpoints: cfg.Agents * cfg.PerAgent,
		Gateways: cfg.Gateways, ActiveAgents: cfg.Active, RSS: map[string]float64{}, MoreGateways: cfg.MoreGateways}
	keys := agentKeys(cfg.Agents, cfg.Namespaces)
	active, idle := keys[:cfg.Active], keys[cfg.Active:]
	sidecars, stopSidecars, err := fakeSidecars(cfg.PerAgent)
	if err != nil {
		return nil, err
	}
	stops = append(stops, stopSidecars)
	stopIdle, err := idleSidecars()
	if err != nil {
		return nil, err
	}
	stops = append(stops, stopIdle)
	t0 := time.Now()
	addrs, err := populate(ctx, c, kube, keys, cfg.PerAgent, 16, sidecars, cfg.Active)
	if err != nil {
		return nil, err
	}
	res.Populate = time.Since(t0)
	logf("%d agents and EndpointSlices created in %s", cfg.Agents, res.Populate.Round(time.Millisecond))

	tokenFile := filepath.Join(dir, "control-token")
	token := make([]byte, 24)
	_, _ = rand.Read(token)
	if err := os.WriteFile(tokenFile, []byte(hex.EncodeToString(token)), 0o600); err != nil {
		return nil, err
	}
	// Bypass protection as the chart sets it: the manager gives sidecars
	// the token the gateways present (the fake sidecars do not check it),
	// and the autoscaler knows every request passes a gateway.
	gatewayTokenFile := filepath.Join(dir, "gateway-token")
	_, _ = rand.Read(token)
	if err := os.WriteFile(gatewayTokenFile, []byte(hex.EncodeToString(token)), 0o600); err != nil {
		return nil, err
	}
	startGateways := func(from, to int) ([]*gateway, error) {
		var gws []*gateway
		for i := from; i < to; i++ {
			name := fmt.Sprintf("gateway-%d", i)
			kc, err := userKubeconfig(env, dir, name)
			if err != nil {
				return nil, err
			}
			g, err := startGateway(name, cfg.Flint, kc, tokenFile, gatewayTokenFile, cfg.Profiles != "")
			if err != nil {
				return nil, err
			}
			stops = append(stops, g.stop)
			gws = append(gws, g)
		}
		for _, g := range gws {
			if err := g.awaitReady(cfg.Agents, cfg.Timeout); err != nil {
				return nil, err
			}
		}
		return gws, nil
	}
	gws, err := startGateways(0, cfg.Gateways)
	if err != nil {
		return nil, err
	}
	for _, g := range gws {
		res.GatewayReady = append(res.GatewayReady, g.ready)
	}
	logf("%d gateways ready: %v", len(gws), res.GatewayReady)
	if rg, err := gws[0].rssMiB(); err == nil {
		logf("memory at ready: %s RSS %.0f MiB", gws[0].name, rg)
	}

	managerKC, err := userKubeconfig(env, dir, "manager")
	if err != nil {
		return nil, err
	}
	startManager := func(gws []*gateway) (*proc, string, error) {
		metricsAddr, err := freeAddr()
		if err != nil {
			return nil, "", err
		}
		var controls []string
		for _, g := range gws {
			controls = append(controls, g.control)
		}
		pprof, args, err := withPprof(cfg.Profiles != "", []string{"manager", "-kubeconfig", managerKC, "-leader-elect=false",
			"-metrics-addr", metricsAddr, "-health-probe-addr=0", "-sidecar-image", "flint:scale",
			"-gateways", strings.Join(controls, ","), "-control-token-file", tokenFile,
			"-gateway-token-file", gatewayTokenFile, "-log-format=text"})
		if err != nil {
			return nil, "", err
		}
		m, err := startProcEnv("manager", cfg.Flint, []string{managerGOMEMLIMIT}, args...)
		if m != nil {
			m.pprof = pprof
		}
		return m, "http://" + metricsAddr + "/metrics", err
	}
	manager, metricsURL, err := startManager(gws)
	if err != nil {
		return nil, err
	}
	stopManager := manager.stop
	stops = append(stops, func() { stopManager() })
	done, err := waitDeployments(ctx, c, cfg.Agents, cfg.Timeout)
	if err != nil {
		return nil, fmt.Errorf("%w\nmanager:\n%s", err, manager.tail(20))
	}
	res.Reconcile = done.Sub(manager.start)
	logf("manager: %d Deployments in %s", cfg.Agents, res.Reconcile.Round(time.Millisecond))

	quiet, err := waitQuiet(auditLog, "manager", 5*time.Second, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	res.Converge = quiet.Sub(manager.start)
	logf("manager: last write %s after start", res.Converge.Round(time.Millisecond))

	procs := []*proc{manager}
	for _, g := range gws {
		procs = append(procs, g.proc)
	}
	res.logMemory(logf, "after reconcile", manager, metricsURL, gws[0])
	time.Sleep(cfg.Settle)
	res.noteRSS(procs)
	s0, c0, _ := histogramSum(metricsURL, "flint_autoscaler_decision_duration_seconds")
	if res.Idle, err = measureWindow(procs, auditLog, cfg.Window); err != nil {
		return nil, err
	}
	s1, c1, _ := histogramSum(metricsURL, "flint_autoscaler_decision_duration_seconds")
	res.DecisionSum, res.DecisionCount = s1-s0, c1-c0
	res.noteRSS(procs)
	res.logMemory(logf, "after idle window", manager, metricsURL, gws[0])
	saveHeaps(cfg, logf, "idle", manager, gws[0].proc)
	logf("idle: cpu %v writes %v", res.Idle.cpu, res.Idle.writes)

	next := cfg.Agents * cfg.PerAgent
	if res.Propagation, err = propagation(ctx, kube, gws, idle, addrs, cfg.Changes, &next); err != nil {
		return nil, err
	}
	res.noteRSS(procs)
	res.logMemory(logf, "after propagation", manager, metricsURL, gws[0])
	logf("propagation: p50 %s p99 %s", percentile(res.Propagation, .5), percentile(res.Propagation, .99))

	if cfg.Active > 0 {
		if res.Active, res.ActiveOK, res.ActiveFailed, err = activeWindow(ctx, cfg, gws, active, procs, auditLog); err != nil {
			return nil, err
		}
		res.noteRSS(procs)
		res.logMemory(logf, "after active window", manager, metricsURL, gws[0])
		saveHeaps(cfg, logf, "active", manager, gws[0].proc)
		logf("active: %d ok %d failed, cpu %v writes %v", res.ActiveOK, res.ActiveFailed, res.Active.cpu, res.Active.writes)
	}

	if cfg.MoreGateways > cfg.Gateways {
		manager.stop()
		more, err := startGateways(cfg.Gateways, cfg.MoreGateways)
		if err != nil {
			return nil, err
		}
		all := append(gws, more...)
		manager, metricsURL, err = startManager(all)
		if err != nil {
			return nil, err
		}
		stopManager = manager.stop
		procs := []*proc{manager}
		for _, g := range all {
			procs = append(procs, g.proc)
		}
		if _, err := waitQuiet(auditLog, "manager", 5*time.Second, cfg.Timeout); err != nil {
			return nil, err
		}
		time.Sleep(cfg.Settle)
		w, err := measureWindow(procs, auditLog, cfg.Window)
		if err != nil {
			return nil, err
		}
		res.More = &w
		res.noteRSS(procs)
		res.logMemory(logf, "with more gateways", manager, metricsURL, gws[0])
		saveHeaps(cfg, logf, "more", manager, gws[0].proc)
		logf("%d gateways idle: cpu %v", cfg.MoreGateways, w.cpu)
		if cfg.Active > 0 {
			aw, _, failed, err := activeWindow(ctx, cfg, all, active, procs, auditLog)
			if err != nil {
				return nil, err
			}
			res.MoreActive, res.ActiveFailed = &aw, res.ActiveFailed+failed
			logf("%d gateways active: writes %v", cfg.MoreGateways, aw.writes)
		}
	}
	time.Sleep(auditLag) // the audit log's last batch
	if res.TotalWrites, err = auditWrites(auditLog, time.Time{}, time.Now()); err != nil {
		return nil, err
	}
	for _, p := range procs {
		if errs := p.errorLines(); len(errs) > 0 {
			logf("%s logged %d errors, first: %s", p.name, len(errs), errs[0])
		}
	}
	return res, nil
}

// activeWindow invokes the active agents once a second each, round-robin
// over the gateways, and measures a window once the first invocation
// times have been written.
func activeWindow(ctx context.Context, cfg config, gws []*gateway, active []agentKey, procs []*proc, auditLog string) (window, int, int, error) {
	actx, cancel := context.WithCancel(ctx)
	type counts struct{ ok, failed int }
	out := make(chan counts, 1)
	go func() {
		ok, failed := invokeLoop(actx, gws, active, time.Second)
		out <- counts{ok, failed}
	}()
	time.Sleep(cfg.Settle)
	w, err := measureWindow(procs, auditLog, cfg.Window)
	cancel()
	n := <-out
	return w, n.ok, n.failed, err
}
