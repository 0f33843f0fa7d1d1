package gateway

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
	"github.com/flint-dev/flint/internal/wire"
)

// refusingReplica answers every request as a sidecar refusing for reason
// (a sidecar's rejection, status 503) does, after wait() returns.
func refusingReplica(t *testing.T, hits *atomic.Int64, reason string, wait func()) platform.Endpoint {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if wait != nil {
			wait()
		}
		w.Header().Set(wire.HeaderRejected, reason)
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"reason":"` + reason + `"}`))
	}))
	t.Cleanup(srv.Close)
	return platform.Endpoint{Addr: srv.Listener.Addr().String(), Replica: srv.URL}
}

// TestRetryBudgetPerRequest: replicas that refuse every attempt (here as
// not ready) get one request at most 1 + PerRequest times; the client then
// gets the last refusal (503 + Retry-After), without the internal marker.
// (Refusals for capacity wait in the capacity hold instead:
// TestCapacityRefusalOverBudgetWaitsForRoom.)
func TestRetryBudgetPerRequest(t *testing.T) {
	var hits atomic.Int64
	p := platformtest.New(testAgent(0))
	p.SetReady(echoKey, refusingReplica(t, &hits, wire.RejectNotReady, nil), refusingReplica(t, &hits, wire.RejectNotReady, nil))
	gw, srv := startGateway(t, p, nil, func(c *Config) { c.FullBackoff = 0 })
	res, err := client(t).Post(srv.URL+"/v1/agents/default/echo/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if want := int64(1 + gw.cfg.Retry.PerRequest); hits.Load() != want {
		t.Errorf("one request was sent %d times, want %d", hits.Load(), want)
	}
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" || res.Header.Get(wire.HeaderRejected) != "" {
		t.Errorf("client got %d %v", res.StatusCode, res.Header)
	}
	m := gw.metrics
	if n := testutil.ToFloat64(m.retriesDenied.WithLabelValues("default", "echo", "request")); n != 1 {
		t.Errorf("retries denied by the per-request limit: %v, want 1", n)
	}
}

// TestRetryBudgetPerAgent: when many requests are refused at once (here by
// replicas not ready yet), only Min of them (or Fraction of those in
// progress) are resent; the rest get the refusal, counted as denied by the
// agent's budget.
func TestRetryBudgetPerAgent(t *testing.T) {
	const requests, minRetrying = 6, 2
	var hits atomic.Int64
	var arrived sync.WaitGroup
	arrived.Add(requests)
	first := func() {
		if n := hits.Load(); n <= requests {
			arrived.Done()
			arrived.Wait() // every request is refused at the same moment
			return
		}
		time.Sleep(300 * time.Millisecond) // retries stay in progress while the rest decide
	}
	p := platformtest.New(testAgent(0))
	p.SetReady(echoKey, refusingReplica(t, &hits, wire.RejectNotReady, first))
	gw, srv := startGateway(t, p, nil, func(c *Config) {
		c.FullBackoff = 0
		c.CapacityHold = 50 * time.Millisecond
		c.Retry = RetryBudget{PerRequest: 1, Fraction: 0, Min: minRetrying}
	})
	var wg sync.WaitGroup
	c := client(t)
	for range requests {
		wg.Go(func() {
			res, err := c.Post(srv.URL+"/v1/agents/default/echo/", "text/plain", nil)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			if res.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("status %d", res.StatusCode)
			}
		})
	}
	wg.Wait()
	m := gw.metrics
	retried := testutil.ToFloat64(m.retries.WithLabelValues("default", "echo", "rejected_"+wire.RejectNotReady))
	denied := testutil.ToFloat64(m.retriesDenied.WithLabelValues("default", "echo", "agent"))
	t.Logf("%d requests refused at once: %v resent, %v denied by the agent's budget", requests, retried, denied)
	if retried != minRetrying || denied != requests-minRetrying {
		t.Errorf("resent %v and denied %v, want %d and %d", retried, denied, minRetrying, requests-minRetrying)
	}
}

// TestCapacityRefusalOverBudgetWaitsForRoom: a replica full because another
// gateway filled it refuses; with no retry left in the budget the request
// is not answered with that refusal but waits in the capacity hold and goes
// out once the replica has room (two gateways scaling one agent up).
func TestCapacityRefusalOverBudgetWaitsForRoom(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set(wire.HeaderRejected, wire.RejectCapacity)
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("served"))
	}))
	t.Cleanup(srv.Close)
	p := platformtest.New(testAgent(0))
	p.SetReady(echoKey, platform.Endpoint{Addr: srv.Listener.Addr().String(), Replica: srv.URL})
	gw, gsrv := startGateway(t, p, nil, func(c *Config) {
		c.FullBackoff, c.CapacityHold = 20*time.Millisecond, 10*time.Second
		c.Retry = RetryBudget{PerRequest: 0, Fraction: 0, Min: 0}
	})
	res, err := client(t).Post(gsrv.URL+"/v1/agents/default/echo/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || hits.Load() != 2 {
		t.Errorf("client got %d after %d attempts, want 200 after 2 (the refusal held, then resent once the replica had room)", res.StatusCode, hits.Load())
	}
	if n := testutil.ToFloat64(gw.metrics.retriesDenied.WithLabelValues("default", "echo", "request")); n != 1 {
		t.Errorf("retries denied by the per-request limit: %v, want 1", n)
	}
}
