package autoscaler

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
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

// scrapeCounter counts the scrapes that reach each admin address.
type scrapeCounter struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (c *scrapeCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[r.URL.Host]++
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *scrapeCounter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.n {
		n += v
	}
	return n
}

// startQuietLoop starts a Loop whose scrapes are counted; idle is its
// IdleScrapeInterval (Tick, 2s, scrapes every tick).
func startQuietLoop(t *testing.T, p Platform, d DemandSource, idle time.Duration, reg prometheus.Registerer) (*Loop, *scrapeCounter) {
	t.Helper()
	counter := &scrapeCounter{next: noKeepAlive().Transport, n: map[string]int{}}
	l, err := NewLoop(LoopConfig{HTTPClient: &http.Client{Transport: counter}, IdleScrapeInterval: idle},
		p, d, slog.New(slog.DiscardHandler), reg)
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

// tickFor advances the bubble's clock by d, one second at a time.
func tickFor(d time.Duration) {
	for range int(d / time.Second) {
		time.Sleep(time.Second)
		synctest.Wait()
	}
}

// TestQuietAgentIsNotScraped: an agent with idle replicas and no request
// through the gateway is scraped twice (a baseline, then a span that shows
// it idle), then only every IdleScrapeInterval; it is still decided on
// every tick.
func TestQuietAgentIsNotScraped(t *testing.T) {
	sidecars := []*fakeSidecar{newFakeSidecar(t, 0), newFakeSidecar(t, 0)}
	synctest.Test(t, func(t *testing.T) {
		agent := testAgent("quiet", 10, 2, 5) // min 2: it stays up, idle
		key := platform.KeyOf(agent)
		p := newQuietPlatform(agent)
		p.SetReady(platform.KeyOf(agent), sidecars[0].endpoint("quiet-0"), sidecars[1].endpoint("quiet-1"))
		gw := &platformtest.GatewayDemand{}
		gw.Set(key, wire.Demand{RequestsTotal: 7, LastRequest: time.Now().Add(-time.Hour)})
		reg := prometheus.NewRegistry()
		l, scrapes := startQuietLoop(t, p, gw, 30*time.Second, reg)

		tickFor(2 * time.Minute) // 60 ticks
		// 2 scrapes to learn it is idle, then one per 30s (15 ticks) at
		// most, plus one for the slot that spreads agents: 2+4+1 ticks.
		if n := scrapes.total(); n > 2*7 {
			t.Errorf("%d scrapes of 2 idle replicas in 60 ticks, want at most 14 (2 replicas x 7)", n)
		}
		if n := scrapes.total(); n < 2*5 {
			t.Errorf("%d scrapes of 2 idle replicas in 2 minutes, want every 30s at least (10)", n)
		}
		skipped := testutil.ToFloat64(l.metrics.scrapesSkipped)
		if skipped < 2*50 {
			t.Errorf("%v scrapes skipped, want most of 120", skipped)
		}
		decs := l.Decisions(key)
		if len(decs) == 0 || decs[len(decs)-1].Ready != 2 || decs[len(decs)-1].Desired != 2 {
			t.Errorf("decisions %+v, want the agent kept at 2 ready", decs)
		}
		if v := testutil.ToFloat64(l.metrics.ready.WithLabelValues(key.Namespace, key.Name)); v != 2 {
			t.Errorf("ready gauge %v, want 2: the quiet agent is still decided", v)
		}
	})
}

// TestQuietAgentScrapedAtOnceOnGatewayTraffic: a request through the
// gateway ends the quiet: the next tick scrapes, and so does every tick
// while requests keep coming.
func TestQuietAgentScrapedAtOnceOnGatewayTraffic(t *testing.T) {
	sidecar := newFakeSidecar(t, 0)
	synctest.Test(t, func(t *testing.T) {
		agent := testAgent("woken", 10, 1, 5)
		key := platform.KeyOf(agent)
		p := newQuietPlatform(agent)
		p.SetReady(platform.KeyOf(agent), sidecar.endpoint("woken-0"))
		gw := &platformtest.GatewayDemand{}
		_, scrapes := startQuietLoop(t, p, gw, time.Hour, nil)
		tickFor(20 * time.Second)
		quiet := scrapes.total()
		if quiet > 3 {
			t.Fatalf("%d scrapes in 10 idle ticks, want 2 (then quiet)", quiet)
		}

		// One request through the gateway, answered at once.
		sidecar.set(1)
		gw.Set(key, wire.Demand{RequestsTotal: 1, LastRequest: time.Now()})
		tickFor(2 * time.Second)
		if n := scrapes.total(); n != quiet+1 {
			t.Fatalf("%d scrapes a tick after a request, want %d: scraped at once", n, quiet+1)
		}
		// Requests keep coming: every tick scrapes.
		for i := range 5 {
			gw.Set(key, wire.Demand{RequestsTotal: uint64(2 + i), LastRequest: time.Now()})
			tickFor(2 * time.Second)
		}
		if n := scrapes.total(); n != quiet+6 {
			t.Errorf("%d scrapes, want %d: one per tick while the gateway sees requests", n, quiet+6)
		}
	})
}

// TestQuietAgentDirectTrafficSeenWithinBound: traffic that reaches the
// replicas without a gateway (bypass protection off) is seen at the next
// forced scrape, within IdleScrapeInterval, and scales the agent up.
func TestQuietAgentDirectTrafficSeenWithinBound(t *testing.T) {
	sidecar := newFakeSidecar(t, 0)
	synctest.Test(t, func(t *testing.T) {
		agent := testAgent("direct", 10, 1, 20) // target 7
		key := platform.KeyOf(agent)
		p := newQuietPlatform(agent)
		p.SetReady(platform.KeyOf(agent), sidecar.endpoint("direct-0"))
		gw := &platformtest.GatewayDemand{} // never sees a request
		const bound = 20 * time.Second
		_, scrapes := startQuietLoop(t, p, gw, bound, nil)
		tickFor(time.Minute)
		before := scrapes.total()

		sidecar.set(10) // full, from direct callers only
		start := time.Now()
		for p.Replicas(key) == 1 && time.Since(start) <= bound+2*time.Second {
			tickFor(time.Second)
		}
		if n := p.Replicas(key); n < 2 {
			t.Fatalf("%d replicas %s after direct traffic started, want a scale-up within %s", n, time.Since(start), bound)
		}
		t.Logf("direct traffic seen after %s (bound %s)", time.Since(start), bound)
		// From then on the agent is busy and scraped every tick.
		mark := scrapes.total()
		tickFor(10 * time.Second)
		if n := scrapes.total() - mark; n < 5 {
			t.Errorf("%d scrapes in 5 busy ticks, want one per tick", n)
		}
		if before > 3+2 {
			t.Errorf("%d scrapes in a quiet minute with a %s bound, want at most 5", before, bound)
		}
	})
}

// TestQuietAgentScalesDownOnSchedule: an idle agent with replicas scales
// down and to zero exactly when it does with a scrape on every tick: the
// same decisions at the same times.
func TestQuietAgentScalesDownOnSchedule(t *testing.T) {
	sidecars := []*fakeSidecar{newFakeSidecar(t, 0), newFakeSidecar(t, 0), newFakeSidecar(t, 0), newFakeSidecar(t, 0)}
	run := func(idle time.Duration) (decs []wire.Decision, calls []platformtest.ScaleCall, scrapes int) {
		synctest.Test(t, func(t *testing.T) {
			agent := testAgent("down", 10, 0, 5)
			key := platform.KeyOf(agent)
			p := newQuietPlatform(agent)
			var eps []platform.Endpoint
			for i, s := range sidecars {
				eps = append(eps, s.endpoint("down-"+string(rune('0'+i))))
			}
			p.SetReady(platform.KeyOf(agent), eps...)
			gw := &platformtest.GatewayDemand{}
			gw.Set(key, wire.Demand{RequestsTotal: 40, LastRequest: time.Now()})
			l, counter := startQuietLoop(t, p, gw, idle, nil)
			tickFor(4 * time.Minute)
			decs, calls, scrapes = l.Decisions(key), p.ScaleCalls(), counter.total()
		})
		return decs, calls, scrapes
	}
	everyTick, everyTickCalls, everyTickScrapes := run(2 * time.Second)
	quiet, quietCalls, quietScrapes := run(time.Minute)
	if len(everyTickCalls) == 0 || everyTickCalls[len(everyTickCalls)-1].N != 0 {
		t.Fatalf("scale calls %+v, want the idle agent scaled down to zero", everyTickCalls)
	}
	if !sameDecisions(quiet, everyTick) {
		t.Errorf("decisions of a quiet agent differ from one scraped every tick:\nquiet      %+v\nevery tick %+v", quiet, everyTick)
	}
	if len(quietCalls) != len(everyTickCalls) {
		t.Fatalf("scale calls %+v, want %+v", quietCalls, everyTickCalls)
	}
	for i := range quietCalls {
		if q, e := quietCalls[i], everyTickCalls[i]; q.N != e.N || !q.At.Equal(e.At) {
			t.Errorf("scale call %d: %d at %s, want %d at %s", i, q.N, q.At, e.N, e.At)
		}
	}
	if quietScrapes*3 > everyTickScrapes {
		t.Errorf("%d scrapes when quiet, %d when scraping every tick: want a third at most", quietScrapes, everyTickScrapes)
	}
	t.Logf("scrapes: %d quiet, %d every tick; scale calls %+v", quietScrapes, everyTickScrapes, quietCalls)
}

// TestScrapeGoroutinesBoundedByParallelism: scraping many replicas starts
// a goroutine per scrape only once it has a slot; none wait for one (after
// a manager restart, 2,000 agents' 10,000 replicas had 9,830 goroutines).
func TestScrapeGoroutinesBoundedByParallelism(t *testing.T) {
	slow := newFakeSidecar(t, 0)
	hang := make(chan struct{})
	slow.mu.Lock()
	slow.hang = hang
	slow.mu.Unlock()
	s := newScraper(noKeepAlive(), 5*time.Second, 4, 2*time.Second)
	eps := make([]platform.Endpoint, 500)
	for i := range eps {
		eps[i] = slow.endpoint("r-" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
	}
	base := runtime.NumGoroutine()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.scrapeAll(context.Background(), eps, map[string]wire.Stats{}, false)
	}()
	time.Sleep(200 * time.Millisecond) // the first 4 scrapes hang
	n := runtime.NumGoroutine() - base
	close(hang)
	<-done
	// scrapeAll, 4 scrapes, and for each a client connection's and a
	// server connection's goroutines.
	if n > 40 {
		t.Errorf("%d goroutines scraping 500 replicas with parallelism 4, want a few per slot", n)
	}
}

// TestResumedScrapeAveragesSinceTheLastTick: the first scrape after quiet
// ticks, when a request through a gateway ended the quiet, averages over the
// time since the previous tick (the load arrived after it), not over every
// skipped tick; a forced scrape, or one with no skipped tick before it,
// keeps its span.
func TestResumedScrapeAveragesSinceTheLastTick(t *testing.T) {
	last := at(100)
	before := wire.Demand{RequestsTotal: 7}
	sample := func() []ReplicaSample {
		return []ReplicaSample{{InFlight: 2, Queued: 1, Requests: 30, Completed: 28, Span: 30 * time.Second, Known: true}, {}}
	}
	for _, tc := range []struct {
		name    string
		skipped bool
		gw      wire.Demand
		want    ReplicaSample
	}{
		{"request through a gateway", true, wire.Demand{RequestsTotal: 37},
			ReplicaSample{InFlight: 30, Queued: 15, Requests: 30, Completed: 28, Span: 2 * time.Second, Known: true}},
		{"forced scrape", true, before, sample()[0]},
		{"no tick skipped", false, wire.Demand{RequestsTotal: 37}, sample()[0]},
	} {
		q := quietState{skipped: tc.skipped, lastTick: last, demand: before}
		got := sample()
		q.resumed(got, tc.gw, last.Add(2*time.Second))
		if got[0] != tc.want || got[1] != (ReplicaSample{}) {
			t.Errorf("%s: %+v, want %+v and the unknown replica untouched", tc.name, got, tc.want)
		}
	}
}

// TestForcedScrapeKeepsNoConnection: the periodic scrape of a quiet agent
// closes its connections (the next is an idle scrape interval away); a
// scrape of an agent with traffic keeps them for the next tick.
func TestForcedScrapeKeepsNoConnection(t *testing.T) {
	var mu sync.Mutex
	conns := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(wire.Stats{UptimeSeconds: 1, Ready: true})
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	eps := []platform.Endpoint{{Addr: addr, AdminAddr: addr, Replica: "r"}}
	for _, tc := range []struct {
		closeConns bool
		want       int
	}{{false, 1}, {true, 3}} {
		mu.Lock()
		conns = 0
		mu.Unlock()
		s := newScraper(nil, time.Second, 4, 2*time.Second)
		for range 3 {
			if _, _, errs := s.scrapeAll(context.Background(), eps, map[string]wire.Stats{}, tc.closeConns); len(errs) > 0 {
				t.Fatal(errs)
			}
		}
		mu.Lock()
		if conns != tc.want {
			t.Errorf("close %v: %d connections for 3 scrapes, want %d", tc.closeConns, conns, tc.want)
		}
		mu.Unlock()
	}
}
