package autoscaler

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
	"github.com/flint-dev/flint/internal/wire"
)

// Quiet agents when every request passes a gateway (LoopConfig.GatewaysSeeAll,
// the sidecars' bypass protection on): no periodic scrape while quiet.

// coveredGateway is a gateway's demand (platformtest.GatewayDemand) that says whether its latest reading of
// every gateway succeeded (GatewayCoverage).
type coveredGateway struct {
	platformtest.GatewayDemand
	unread atomic.Bool
}

func (g *coveredGateway) EveryGatewayRead() bool { return !g.unread.Load() }

// startCountedLoop starts a Loop with cfg whose scrapes are counted.
func startCountedLoop(t *testing.T, cfg LoopConfig, p Platform, d DemandSource) (*Loop, *scrapeCounter) {
	t.Helper()
	counter := &scrapeCounter{next: noKeepAlive().Transport, n: map[string]int{}}
	cfg.HTTPClient = &http.Client{Transport: counter}
	l, err := NewLoop(cfg, p, d, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return l, counter
}

// TestGatewaysSeeAllQuietAgentNeverScraped: with bypass protection on, an
// idle agent at its minimum is scraped twice (a baseline, then a span that
// shows it idle) and then never again in ten minutes, while it is still
// decided every tick; with it off, the periodic scrape stays.
func TestGatewaysSeeAllQuietAgentNeverScraped(t *testing.T) {
	sidecars := []*fakeSidecar{newFakeSidecar(t, 0), newFakeSidecar(t, 0)}
	for _, tc := range []struct {
		seeAll      bool
		least, most int
	}{
		{true, 2 * 2, 2 * 2},        // baseline and idle span, nothing after
		{false, 2 * 20, 2 * 2 * 21}, // and one every 30 s (plus its slot)
	} {
		synctest.Test(t, func(t *testing.T) {
			agent := testAgent("quiet", 10, 2, 5)
			key := platform.KeyOf(agent)
			p := newQuietPlatform(agent)
			p.SetReady(platform.KeyOf(agent), sidecars[0].endpoint("quiet-0"), sidecars[1].endpoint("quiet-1"))
			gw := &coveredGateway{}
			gw.Set(key, wire.Demand{RequestsTotal: 7, LastRequest: time.Now().Add(-time.Hour)})
			l, scrapes := startCountedLoop(t, LoopConfig{IdleScrapeInterval: 30 * time.Second, GatewaysSeeAll: tc.seeAll}, p, gw)

			tickFor(10 * time.Minute)
			if n := scrapes.total(); n < tc.least || n > tc.most {
				t.Errorf("gateways see all %v: %d scrapes of 2 idle replicas in 10 minutes, want %d to %d", tc.seeAll, n, tc.least, tc.most)
			}
			decs := l.Decisions(key)
			if len(decs) == 0 || decs[len(decs)-1].Ready != 2 || decs[len(decs)-1].Desired != 2 {
				t.Errorf("decisions %+v, want the agent kept at 2 ready", decs)
			}
		})
	}
}

// TestGatewaysSeeAllScalesDownOnSchedule: with bypass protection on, an
// idle agent scales down and to zero at the same times, with the same
// decisions, as one scraped every tick, on its two first scrapes alone.
func TestGatewaysSeeAllScalesDownOnSchedule(t *testing.T) {
	sidecars := []*fakeSidecar{newFakeSidecar(t, 0), newFakeSidecar(t, 0), newFakeSidecar(t, 0), newFakeSidecar(t, 0)}
	run := func(cfg LoopConfig) (decs []wire.Decision, calls []platformtest.ScaleCall, scrapes int) {
		synctest.Test(t, func(t *testing.T) {
			agent := testAgent("down", 10, 0, 5)
			key := platform.KeyOf(agent)
			p := newQuietPlatform(agent)
			var eps []platform.Endpoint
			for i, s := range sidecars {
				eps = append(eps, s.endpoint("down-"+string(rune('0'+i))))
			}
			p.SetReady(platform.KeyOf(agent), eps...)
			gw := &coveredGateway{}
			gw.Set(key, wire.Demand{RequestsTotal: 40, LastRequest: time.Now()})
			l, counter := startCountedLoop(t, cfg, p, gw)
			tickFor(4 * time.Minute)
			decs, calls, scrapes = l.Decisions(key), p.ScaleCalls(), counter.total()
		})
		return decs, calls, scrapes
	}
	everyTick, everyTickCalls, _ := run(LoopConfig{IdleScrapeInterval: 2 * time.Second})
	quiet, quietCalls, quietScrapes := run(LoopConfig{IdleScrapeInterval: time.Minute, GatewaysSeeAll: true})
	if len(everyTickCalls) == 0 || everyTickCalls[len(everyTickCalls)-1].N != 0 {
		t.Fatalf("scale calls %+v, want the idle agent scaled down to zero", everyTickCalls)
	}
	if !sameDecisions(quiet, everyTick) {
		t.Errorf("decisions without periodic scrapes differ from scraping every tick:\nquiet      %+v\nevery tick %+v", quiet, everyTick)
	}
	if len(quietCalls) != len(everyTickCalls) {
		t.Fatalf("scale calls %+v, want %+v", quietCalls, everyTickCalls)
	}
	for i := range quietCalls {
		if q, e := quietCalls[i], everyTickCalls[i]; q.N != e.N || !q.At.Equal(e.At) {
			t.Errorf("scale call %d: %d at %s, want %d at %s", i, q.N, q.At, e.N, e.At)
		}
	}
	// The baseline and the idle span of 4 replicas, then one scrape of
	// what is left when the set of replicas changes (4 -> 2 -> 1 -> 0), and
	// none while it stays the same.
	if quietScrapes != 2*4+2+1 {
		t.Errorf("%d scrapes, want 11: two of each of 4 replicas, then one of each set left by a scale-down", quietScrapes)
	}
}

// TestGatewaysSeeAllTrafficScrapedAtOnce: with bypass protection on, the
// first request through a gateway after a long quiet is scraped on the next
// tick and scales the agent up there.
func TestGatewaysSeeAllTrafficScrapedAtOnce(t *testing.T) {
	sidecar := newFakeSidecar(t, 0)
	synctest.Test(t, func(t *testing.T) {
		agent := testAgent("woken", 10, 1, 20)
		key := platform.KeyOf(agent)
		p := newQuietPlatform(agent)
		p.SetReady(platform.KeyOf(agent), sidecar.endpoint("woken-0"))
		gw := &coveredGateway{}
		_, scrapes := startCountedLoop(t, LoopConfig{GatewaysSeeAll: true}, p, gw)
		tickFor(5 * time.Minute)
		quiet := scrapes.total()
		if quiet != 2 {
			t.Fatalf("%d scrapes in 5 quiet minutes, want 2", quiet)
		}

		sidecar.set(30) // three times its capacity (panic), all through the gateway
		gw.Set(key, wire.Demand{RequestsTotal: 30, InFlight: 30, LastRequest: time.Now()})
		tickFor(2 * time.Second)
		if n := scrapes.total(); n != quiet+1 {
			t.Fatalf("%d scrapes a tick after the gateway saw requests, want %d", n, quiet+1)
		}
		if n := p.Replicas(key); n < 2 {
			t.Errorf("%d replicas a tick after 30 requests in flight on 1, want a scale-up", n)
		}
	})
}

// TestGatewaysSeeAllUnreadGatewayKeepsPeriodicScrape: while the demand
// source cannot read a gateway, requests through it are not counted, so a
// quiet agent is scraped every IdleScrapeInterval again, and load that
// reaches it through that gateway is seen within the bound.
func TestGatewaysSeeAllUnreadGatewayKeepsPeriodicScrape(t *testing.T) {
	sidecar := newFakeSidecar(t, 0)
	synctest.Test(t, func(t *testing.T) {
		agent := testAgent("unread", 10, 1, 20)
		key := platform.KeyOf(agent)
		p := newQuietPlatform(agent)
		p.SetReady(platform.KeyOf(agent), sidecar.endpoint("unread-0"))
		gw := &coveredGateway{}
		const bound = 20 * time.Second
		_, scrapes := startCountedLoop(t, LoopConfig{IdleScrapeInterval: bound, GatewaysSeeAll: true}, p, gw)
		tickFor(time.Minute)
		if n := scrapes.total(); n != 2 {
			t.Fatalf("%d scrapes in a quiet minute with every gateway read, want 2", n)
		}

		gw.unread.Store(true)
		sidecar.set(10) // through the gateway nobody reads
		start := time.Now()
		for p.Replicas(key) == 1 && time.Since(start) <= bound+2*time.Second {
			tickFor(time.Second)
		}
		if n := p.Replicas(key); n < 2 {
			t.Fatalf("%d replicas %s after load through an unread gateway, want a scale-up within %s", n, time.Since(start), bound)
		}
	})
}
