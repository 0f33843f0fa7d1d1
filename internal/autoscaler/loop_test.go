package autoscaler

import (
	"context"
	"errors"
	"flag"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
	"github.com/flint-dev/flint/internal/wire"
)

func TestLoopScalesUpOnHeldDemand(t *testing.T) {
	// Sidecars are real listeners outside the bubble; the loop and its
	// clock are inside.
	sidecar := newFakeSidecar(t, 10) // full: concurrency 10, 1s requests
	synctest.Test(t, func(t *testing.T) {
		f := newLoopTest(testAgent("echo", 10, 0, 20), sidecar.endpoint("echo-0")) // target 7
		f.gw.Set(f.key, wire.Demand{Held: 60, RequestsTotal: 1000, LastRequest: time.Now()})
		l := f.start(t)
		synctest.Wait() // the first tick runs at once

		// 70 req/s of 1s requests arrive; 60 are held.
		f.gw.Set(f.key, wire.Demand{Held: 60, RequestsTotal: 1140, LastRequest: time.Now()})
		time.Sleep(2 * time.Second)
		synctest.Wait()
		calls := f.p.ScaleCalls()
		// The first tick has no arrival rate yet and counts each request
		// once: 10 in flight + 60 held = 70, 10 replicas. The second
		// measures 70/s of 1s requests offered: 70 again, so no change.
		if len(calls) != 1 || calls[0].N != 10 {
			t.Fatalf("scale calls %+v, want one to 10", calls)
		}
		decs := l.Decisions(f.key)
		if last := decs[len(decs)-1]; last.Reason != wire.ReasonPanic || !last.Panic {
			t.Errorf("decision %+v, want panic", last)
		}
		if got := testutil.ToFloat64(l.metrics.desired.WithLabelValues("agents", "echo")); got != 10 {
			t.Errorf("desired_replicas = %v, want 10", got)
		}
		if got := testutil.ToFloat64(l.metrics.panicMode.WithLabelValues("agents", "echo")); got != 1 {
			t.Errorf("panic_mode = %v, want 1", got)
		}
		if n, err := testutil.GatherAndCount(f.reg, "flint_autoscaler_decision_duration_seconds"); err != nil || n != 1 {
			t.Errorf("decision duration series: %d, %v", n, err)
		}
	})
}

func TestLoopTicksEveryTwoSeconds(t *testing.T) {
	sidecar := newFakeSidecar(t, 7)
	synctest.Test(t, func(t *testing.T) {
		f := newLoopTest(testAgent("echo", 10, 0, 20), sidecar.endpoint("echo-0"))
		f.start(t)
		start := time.Now()
		synctest.Wait()
		if len(f.p.ScaleCalls()) != 0 {
			t.Fatalf("scaled a replica at its target: %+v", f.p.ScaleCalls())
		}
		sidecar.set(28) // 4× target on one replica
		time.Sleep(time.Second)
		synctest.Wait()
		if len(f.p.ScaleCalls()) != 0 {
			t.Fatalf("scaled before the next tick")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		calls := f.p.ScaleCalls()
		if len(calls) != 1 || calls[0].N < 2 || calls[0].At.Sub(start) != 2*time.Second {
			t.Fatalf("scale calls %+v, want one scale-up exactly at the 2s tick", calls)
		}
	})
}

func TestLoopPokeScalesFromZeroAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newLoopTest(testAgent("cold", 10, 0, 5))
		l := f.start(t)
		time.Sleep(time.Second) // between ticks
		synctest.Wait()
		poked := time.Now()
		for range 100 {
			l.Poke(f.key) // a burst of held requests: coalesced
		}
		synctest.Wait()
		calls := f.p.ScaleCalls()
		if len(calls) != 1 || calls[0].N != 1 || !calls[0].At.Equal(poked) {
			t.Fatalf("scale calls %+v, want exactly one to 1 at the poke (%v)", calls, poked)
		}
		// The burst may reach the loop in more than one round; a later one
		// runs an early tick, which keeps the replica (no second scale call).
		decs := l.Decisions(f.key)
		if !slices.ContainsFunc(decs, func(d wire.Decision) bool { return d.Reason == wire.ReasonPoke && d.Time.Equal(poked) }) {
			t.Errorf("decisions %+v, want one for the poke at %v", decs, poked)
		}
		// The next ticks keep the replica: the poke counts as traffic.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if calls := f.p.ScaleCalls(); len(calls) != 1 {
			t.Errorf("scale calls after the poke %+v, want none", calls[1:])
		}
		if got := testutil.ToFloat64(l.metrics.pokes.WithLabelValues("agents", "cold")); got != 1 {
			t.Errorf("pokes_total = %v, want 1", got)
		}
	})
}

// withoutAgentLookup hides platform.Platform's Agent, so Poke finds agents
// by scanning Agents, as it does on a Platform that has no lookup.
type withoutAgentLookup struct{ Platform }

func TestLoopPokeBeforeRunAndForUnknownAgents(t *testing.T) {
	t.Run("lookup", func(t *testing.T) { testPokeBeforeRun(t, false) })
	t.Run("scan", func(t *testing.T) { testPokeBeforeRun(t, true) })
}

func testPokeBeforeRun(t *testing.T, scan bool) {
	synctest.Test(t, func(t *testing.T) {
		agent := testAgent("cold", 10, 0, 5)
		key := platform.KeyOf(agent)
		p := platformtest.New(agent)
		var lp Platform = p
		if scan {
			lp = withoutAgentLookup{p}
		}
		l, err := NewLoop(LoopConfig{Tick: time.Hour, ScrapeTimeout: time.Second}, lp, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		l.Poke(platform.AgentKey{Namespace: "agents", Name: "nobody"})
		l.Poke(key) // before Run: must not block, served when Run starts
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = l.Run(ctx) }()
		synctest.Wait()
		if calls := p.ScaleCalls(); len(calls) != 1 || calls[0].Key != key {
			t.Errorf("scale calls %+v, want one for %v", calls, key)
		}
	})
}

func TestLoopFailedScrapeIsUnknownNotZero(t *testing.T) {
	good := newFakeSidecar(t, 7)
	bad := newFakeSidecar(t, 7)
	synctest.Test(t, func(t *testing.T) {
		f := newLoopTest(testAgent("echo", 10, 0, 20), good.endpoint("echo-0"), bad.endpoint("echo-1")) // target 7
		l := f.start(t)
		time.Sleep(70 * time.Second) // past the restart hold-off
		synctest.Wait()
		bad.fail(http.StatusInternalServerError)
		time.Sleep(70 * time.Second)
		synctest.Wait()
		if calls := f.p.ScaleCalls(); len(calls) != 0 {
			t.Fatalf("scale calls %+v with one replica unreadable, want none (its load is unknown, not zero)", calls)
		}
		decs := l.Decisions(f.key)
		last := decs[len(decs)-1]
		if last.Unknown != 1 || last.Demand != 14 || last.Desired != 2 {
			t.Errorf("decision %+v, want 1 unknown replica extrapolated to demand 14, desired 2", last)
		}
		if got := testutil.ToFloat64(l.metrics.scrapeErrors.WithLabelValues("agents", "echo")); got < 30 {
			t.Errorf("scrape_errors_total = %v, want one per tick", got)
		}
	})
}

func TestLoopScrapeTimeout(t *testing.T) {
	// Real time: a request parked in a network read does not let a
	// synctest clock advance, so the timeout is tested against the wall
	// clock with a short deadline.
	slow := newFakeSidecar(t, 5)
	slow.hang = make(chan struct{})
	defer close(slow.hang)
	fast := newFakeSidecar(t, 5)
	agent := testAgent("echo", 10, 0, 20)
	key := platform.KeyOf(agent)
	p := platformtest.New(agent)
	p.SetReady(key, fast.endpoint("echo-0"), slow.endpoint("echo-1"))
	l, err := NewLoop(LoopConfig{ScrapeTimeout: 100 * time.Millisecond}, p, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- l.Run(ctx) }() // the first tick runs at once
	defer func() { cancel(); <-done }()
	var decs []wire.Decision
	for decs = l.Decisions(key); len(decs) == 0 && time.Since(start) < 5*time.Second; decs = l.Decisions(key) {
		time.Sleep(5 * time.Millisecond)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("tick took %v with a hung sidecar, want about the 100ms scrape timeout", took)
	}
	if len(decs) != 1 || decs[0].Unknown != 1 || decs[0].Demand != 10 {
		t.Errorf("decisions %+v, want the hung replica unknown and demand extrapolated to 10", decs)
	}
	if got := testutil.ToFloat64(l.metrics.scrapeErrors.WithLabelValues("agents", "echo")); got != 1 {
		t.Errorf("scrape_errors_total = %v, want 1", got)
	}
}

func TestLoopScalesToZeroWhenIdle(t *testing.T) {
	sidecar := newFakeSidecar(t, 3)
	synctest.Test(t, func(t *testing.T) {
		f := newLoopTest(testAgent("echo", 10, 0, 20), sidecar.endpoint("echo-0")) // scaleToZeroAfter 30s
		f.gw.Set(f.key, wire.Demand{RequestsTotal: 5, LastRequest: time.Now()})
		f.start(t)
		time.Sleep(19 * time.Second) // between ticks: the tick at 18s saw load
		sidecar.set(0)
		idleSince := time.Now()
		time.Sleep(60 * time.Second)
		synctest.Wait()
		calls := f.p.ScaleCalls()
		if len(calls) != 1 || calls[0].N != 0 {
			t.Fatalf("scale calls %+v, want one to zero", calls)
		}
		// In-flight is sampled each tick, so idleness counts from the last
		// tick that saw load; zero follows 30s later, give or take a tick.
		if idle := calls[0].At.Sub(idleSince); idle < 28*time.Second || idle > 32*time.Second {
			t.Errorf("scaled to zero after %v idle, want 30s (+ a tick)", idle)
		}
	})
}

func TestLoopForgetsDeletedAgents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newLoopTest(testAgent("gone", 10, 0, 5))
		l := f.start(t)
		synctest.Wait()
		if len(l.Decisions(f.key)) == 0 {
			t.Fatal("no decision recorded")
		}
		f.deleteAgent(t)
	})
}

func TestLoopRetriesFailedScaling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newLoopTest(testAgent("cold", 10, 0, 5))
		f.p.FailScale(errors.New("apiserver unavailable"))
		l := f.start(t)
		l.Poke(f.key)
		synctest.Wait()
		errs := func() float64 { return testutil.ToFloat64(l.metrics.scaleErrors.WithLabelValues("agents", "cold")) }
		if errs() < 1 {
			t.Fatalf("scale_errors_total = %v after a failed poke, want >= 1", errs())
		}
		// The poke counts as traffic, so the next tick asks again.
		before := errs()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if errs() <= before {
			t.Errorf("the tick after a failed poke did not retry")
		}
		f.p.FailScale(nil)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := f.p.Replicas(f.key); n != 1 {
			t.Errorf("replicas %d once the platform recovered, want 1", n)
		}
	})
}

func TestLoopRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := NewLoop(LoopConfig{}, platformtest.New(), nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { _ = l.Run(ctx) })
		synctest.Wait()
		if err := l.Run(ctx); err == nil {
			t.Error("second concurrent Run succeeded")
		}
		cancel()
		wg.Wait()
	})
}

func TestNewLoopRegistersMetricsOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewLoop(LoopConfig{}, platformtest.New(), nil, nil, reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewLoop(LoopConfig{}, platformtest.New(), nil, nil, reg); err == nil || !strings.Contains(err.Error(), "register") {
		t.Errorf("second loop on one registry: %v, want a registration error", err)
	}
	if _, err := NewLoop(LoopConfig{}, nil, nil, nil, nil); err == nil {
		t.Error("nil platform accepted")
	}
}

func TestLoopConfigFlags(t *testing.T) {
	var c LoopConfig
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if c.Tick != 2*time.Second || c.ScrapeTimeout != 500*time.Millisecond || c.Tuning.MaxScaleDownRate != 2 || c.Tuning.PanicThresholdPercent != 200 {
		t.Errorf("flag defaults %+v", c)
	}
	if err := fs.Parse([]string{"-autoscaler-tick=5s", "-autoscaler-max-scale-up-rate=10"}); err != nil {
		t.Fatal(err)
	}
	if c.Tick != 5*time.Second || c.Tuning.MaxScaleUpRate != 10 {
		t.Errorf("parsed %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	tests := []struct {
		name string
		edit func(*LoopConfig)
		want string
	}{
		{"scrape timeout not below tick", func(c *LoopConfig) { c.ScrapeTimeout = 3 * time.Second; c.Tick = 2 * time.Second }, "scrape timeout"},
		{"scale-down rate of 1", func(c *LoopConfig) { c.Tuning.MaxScaleDownRate = 1 }, "max scale-down rate"},
		{"panic threshold below capacity", func(c *LoopConfig) { c.Tuning.PanicThresholdPercent = 90 }, "panic threshold"},
		{"panic window over 100%", func(c *LoopConfig) { c.Tuning.PanicWindowPercent = 150 }, "panic window"},
		{"negative history", func(c *LoopConfig) { c.DecisionHistory = -1 }, "decision history"},
	}
	for _, tt := range tests {
		c := LoopConfig{}
		tt.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want an error about %q", tt.name, err, tt.want)
		}
	}
}

func TestHistoryKeepsDistinctDecisionsInOrder(t *testing.T) {
	h := newHistory(3)
	for i, r := range []wire.Reason{wire.ReasonStable, wire.ReasonStable, wire.ReasonPanic, wire.ReasonStable, wire.ReasonPoke, wire.ReasonPoke} {
		h.add(wire.Decision{Time: at(float64(i)), Desired: 1, Reason: r})
	}
	got := h.list()
	want := []wire.Reason{wire.ReasonPanic, wire.ReasonStable, wire.ReasonPoke}
	if last := got[len(got)-1]; !last.Time.Equal(at(5)) {
		t.Errorf("a repeated decision did not refresh the last entry: %v", last.Time)
	}
	if len(got) != len(want) {
		t.Fatalf("history %+v, want reasons %v", got, want)
	}
	for i := range want {
		if got[i].Reason != want[i] {
			t.Errorf("history[%d] = %s, want %s", i, got[i].Reason, want[i])
		}
	}
}

func TestLoopPokeUnderPressureDecidesEarly(t *testing.T) {
	sidecar := newFakeSidecar(t, 10) // full: concurrency 10
	synctest.Test(t, func(t *testing.T) {
		f := newLoopTest(testAgent("busy", 10, 1, 20), sidecar.endpoint("busy-0"))
		f.gw.Set(f.key, wire.Demand{RequestsTotal: 100, LastRequest: time.Now()})
		l := f.start(t)
		synctest.Wait() // the first tick
		before := len(f.p.ScaleCalls())

		time.Sleep(time.Second) // mid-tick, every replica full and requests held
		f.gw.Set(f.key, wire.Demand{Held: 40, RequestsTotal: 200, LastRequest: time.Now()})
		poked := time.Now()
		l.Poke(f.key)
		synctest.Wait()
		calls := f.p.ScaleCalls()
		if len(calls) != before+1 || !calls[len(calls)-1].At.Equal(poked) || calls[len(calls)-1].N <= 1 {
			t.Fatalf("scale calls %+v, want a scale-up at the poke (%v), before the next tick", calls, poked)
		}
		// Pokes within a quarter tick of an early decision are coalesced.
		l.Poke(f.key)
		synctest.Wait()
		if n := len(l.Decisions(f.key)); n > len(calls)+1 {
			t.Errorf("%d decisions after a second poke at once, want no new early tick", n)
		}
	})
}
