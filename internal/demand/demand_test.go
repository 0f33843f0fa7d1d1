package demand

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
	"github.com/flint-dev/flint/internal/testutil"
	"github.com/flint-dev/flint/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "0123456789abcdef-control"

var echo = platform.AgentKey{Namespace: "ns", Name: "echo"}

// control serves a gateway's control endpoint; swap replaces the server
// behind the same address, as a restarted gateway pod would be.
type control struct {
	srv atomic.Pointer[Server]
	gw  *platformtest.GatewayDemand // of the current server; set before it serves
	ts  *httptest.Server
}

func startControl(t *testing.T, ln net.Listener) *control {
	t.Helper()
	c := &control{}
	c.swap(&platformtest.GatewayDemand{})
	c.ts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.srv.Load().ServeHTTP(w, r) }))
	if ln != nil {
		c.ts.Listener.Close()
		c.ts.Listener = ln
	}
	c.ts.Start()
	t.Cleanup(c.ts.Close)
	return c
}

func (c *control) swap(gw *platformtest.GatewayDemand) {
	s := NewServer(token, nil)
	s.Attach(gw)
	c.gw = gw
	c.srv.Store(s)
}

func TestServerAnswersOnlyTheToken(t *testing.T) {
	c := startControl(t, nil)
	c.gw.Set(echo, wire.Demand{Held: 3, InFlight: 2, RequestsTotal: 9})
	for _, auth := range []string{"", "Bearer wrong-token-of-some-length", token} {
		req, _ := http.NewRequest("GET", c.ts.URL+DemandPath, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d, want 401", auth, res.StatusCode)
		}
	}
	req, _ := http.NewRequest("GET", c.ts.URL+DemandPath, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var snap Snapshot
	if err := json.NewDecoder(res.Body).Decode(&snap); err != nil {
		t.Fatal(err)
	}
	if snap.Instance == "" || len(snap.Agents) != 1 || snap.Agents[0] != (Record{Namespace: "ns", Name: "echo", Demand: wire.Demand{Held: 3, InFlight: 2, RequestsTotal: 9}}) {
		t.Errorf("snapshot %+v", snap)
	}
}

func newCollector(t *testing.T, urls ...string) *Collector {
	t.Helper()
	c, err := NewCollector(CollectorConfig{Gateways: urls, Token: token, Interval: 20 * time.Millisecond, Timeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func run(t *testing.T, c *Collector, poke func(platform.AgentKey)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx, poke, nil) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestCollectorSumsGatewaysAndKeepsTotalsMonotonic: two gateways' held
// requests add up; a gateway's restart (new instance, counters from zero)
// never takes the totals back.
func TestCollectorSumsGatewaysAndKeepsTotalsMonotonic(t *testing.T) {
	a, b := startControl(t, nil), startControl(t, nil)
	a.gw.Set(echo, wire.Demand{Held: 1, RequestsTotal: 100, RejectedTotal: 5})
	b.gw.Set(echo, wire.Demand{Held: 2, RequestsTotal: 50})
	c := newCollector(t, a.ts.URL, b.ts.URL)
	run(t, c, func(platform.AgentKey) {})
	testutil.WaitFor(t, "both gateways' held requests", func() bool { return c.Demand(echo).Held == 3 })
	if d := c.Demand(echo); d.RequestsTotal != 0 || d.RejectedTotal != 0 {
		t.Errorf("totals %+v before any growth: counts from before the collector started are a baseline", d)
	}

	a.gw.Set(echo, wire.Demand{Held: 0, RequestsTotal: 110, RejectedTotal: 6})
	b.gw.Set(echo, wire.Demand{Held: 0, RequestsTotal: 53})
	testutil.WaitFor(t, "growth summed", func() bool { d := c.Demand(echo); return d.RequestsTotal == 13 && d.RejectedTotal == 1 })

	// Gateway a restarts: its counters start over.
	restarted := &platformtest.GatewayDemand{}
	restarted.Set(echo, wire.Demand{Held: 4, RequestsTotal: 4})
	a.swap(restarted)
	testutil.WaitFor(t, "the restarted gateway's requests added", func() bool {
		d := c.Demand(echo)
		return d.RequestsTotal == 17 && d.RejectedTotal == 1 && d.Held == 4
	})
}

func TestPokesArriveAtOnceWithTheHeldCount(t *testing.T) {
	g := startControl(t, nil)
	c, err := NewCollector(CollectorConfig{Gateways: []string{g.ts.URL}, Token: token, Interval: time.Hour, Timeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	poked := make(chan platform.AgentKey, 10)
	run(t, c, func(k platform.AgentKey) { poked <- k })
	// The stream is open once the server has a subscriber.
	testutil.WaitFor(t, "the poke stream", func() bool {
		s := g.srv.Load()
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.subs) == 1
	})
	g.gw.Set(echo, wire.Demand{Held: 1})
	begin := time.Now()
	g.srv.Load().Poke(echo)
	select {
	case k := <-poked:
		if k != echo {
			t.Fatalf("poked %v", k)
		}
		t.Logf("poke delivered in %s", time.Since(begin))
	case <-time.After(5 * time.Second):
		t.Fatal("poke not delivered (the scrape interval is an hour: only the stream can deliver it)")
	}
	if d := c.Demand(echo); d.Held != 1 {
		t.Errorf("held %d after the poke, want 1 without waiting for a scrape", d.Held)
	}
}

// TestEveryAddressOfANameIsAGateway: a headless Service's name resolves to
// every gateway pod.
func TestEveryAddressOfANameIsAGateway(t *testing.T) {
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln1.Addr().(*net.TCPAddr).Port
	ln2, err := net.Listen("tcp", "127.0.0.2:"+strconv.Itoa(port))
	if err != nil {
		ln1.Close()
		t.Skipf("127.0.0.2:%d is taken: %v", port, err)
	}
	a, b := startControl(t, ln1), startControl(t, ln2)
	a.gw.Set(echo, wire.Demand{Held: 1})
	b.gw.Set(echo, wire.Demand{Held: 10})
	c := newCollector(t, "http://gateways.flint.svc:"+strconv.Itoa(port))
	var answer atomic.Value
	answer.Store([]string{"127.0.0.1", "127.0.0.2"})
	c.resolve = func(_ context.Context, host string) ([]string, error) {
		if host != "gateways.flint.svc" {
			t.Errorf("resolved %q", host)
		}
		return answer.Load().([]string), nil
	}
	run(t, c, func(platform.AgentKey) {})
	testutil.WaitFor(t, "both pods scraped", func() bool { return c.Demand(echo).Held == 11 })
	answer.Store([]string{"127.0.0.2"}) // the first pod is gone
	testutil.WaitFor(t, "the gone pod forgotten", func() bool { return c.Demand(echo).Held == 10 })
}

func TestCollectorConfigErrorsSayWhatToFix(t *testing.T) {
	for _, cfg := range []CollectorConfig{
		{Gateways: []string{"flint-gateway:9090"}, Token: token, Interval: time.Second, Timeout: time.Second},
		{Gateways: []string{"http://flint-gateway:9090"}, Interval: time.Second, Timeout: time.Second},
		{Gateways: []string{"http://flint-gateway"}, Token: token, Interval: time.Second, Timeout: time.Second},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// TestCollectorReportsLastInvocations: every gateway's last request reaches
// the manager's recorder, which keeps the latest, so lastInvocationAt is
// written once for all gateways.
func TestCollectorReportsLastInvocations(t *testing.T) {
	a, b := startControl(t, nil), startControl(t, nil)
	early, late := time.Unix(1_000_000, 0), time.Unix(1_000_007, 0)
	a.gw.Set(echo, wire.Demand{RequestsTotal: 1, LastRequest: early})
	b.gw.Set(echo, wire.Demand{RequestsTotal: 1, LastRequest: late})
	other := platform.AgentKey{Namespace: "ns", Name: "idle"}
	a.gw.Set(other, wire.Demand{}) // never invoked: nothing to record
	c := newCollector(t, a.ts.URL, b.ts.URL)
	var mu sync.Mutex
	seen := map[platform.AgentKey]time.Time{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx, func(platform.AgentKey) {}, func(k platform.AgentKey, at time.Time) {
			mu.Lock()
			defer mu.Unlock()
			if at.After(seen[k]) {
				seen[k] = at
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	testutil.WaitFor(t, "the later gateway's last request", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen[echo].Equal(late)
	})
	mu.Lock()
	defer mu.Unlock()
	if _, ok := seen[other]; ok {
		t.Errorf("an agent never invoked was reported: %v", seen[other])
	}
}

// TestEveryGatewayReadOnlyWhileEachScrapeSucceeds: the autoscaler trusts
// the gateways to see all traffic (bypass protection) only while the
// collector reads every one: not before the first scrape, and not once a
// gateway stops answering.
func TestEveryGatewayReadOnlyWhileEachScrapeSucceeds(t *testing.T) {
	a, b := startControl(t, nil), startControl(t, nil)
	c := newCollector(t, a.ts.URL, b.ts.URL)
	if c.EveryGatewayRead() {
		t.Fatal("every gateway read before any scrape")
	}
	run(t, c, func(platform.AgentKey) {})
	testutil.WaitFor(t, "both gateways read", c.EveryGatewayRead)
	// Gateway b stops answering: new connections are refused (the poke
	// stream it has open stays until the test ends).
	b.ts.Config.SetKeepAlivesEnabled(false)
	b.ts.Listener.Close()
	testutil.WaitFor(t, "gateway b's failed scrape noticed", func() bool { return !c.EveryGatewayRead() })
}
