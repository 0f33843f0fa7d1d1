package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testutil"
	"github.com/flint-dev/flint/internal/wire"
)

// serveOn starts an agent on a specific address (one the sidecar already
// probes), as an agent process coming up late would.
func serveOn(t *testing.T, addr string, h http.Handler) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(h)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })

func TestNotReadyUntilAgentAnswers(t *testing.T) {
	addr := testutil.FreeAddr(t)
	cfg := testConfig(addr)
	cfg.ReadyWait = 50 * time.Millisecond
	s := startSidecar(t, cfg, false)
	c := newClient(t)

	time.Sleep(100 * time.Millisecond) // many probe periods
	if s.Ready() || s.Stats().Ready {
		t.Fatal("ready before the agent listens")
	}
	r := get(t, c, "http://"+s.AdminAddr()+wire.PathReadyz)
	if r.code != http.StatusServiceUnavailable || !strings.Contains(r.body, "not answering") {
		t.Fatalf("/readyz before the agent: %d %s", r.code, r.body)
	}
	r = get(t, c, "http://"+s.ServingAddr()+"/")
	if r.code != http.StatusServiceUnavailable || r.header.Get(wire.HeaderRejected) != "not-ready" || r.header.Get("Retry-After") != "1" {
		t.Fatalf("request before the agent: %d %v", r.code, r.header)
	}
	if e := decodeError(t, r.body); e.Reason != "not-ready" {
		t.Fatalf("body %s", r.body)
	}
	if st := s.Stats(); st.RejectedTotal != 0 || st.Queued != 0 {
		t.Fatalf("a not-ready refusal is not a capacity rejection: %+v", st)
	}

	up := time.Now()
	serveOn(t, addr, okHandler)
	testutil.WaitFor(t, "ready", s.Ready)
	if d := time.Since(up); d > time.Second {
		t.Fatalf("took %s to notice the agent; start-up probing should be fast", d)
	}
	if r := get(t, c, "http://"+s.AdminAddr()+wire.PathReadyz); r.code != http.StatusOK {
		t.Fatalf("/readyz after the agent answered: %d %s", r.code, r.body)
	}
	if r := get(t, c, "http://"+s.ServingAddr()+"/"); r.code != http.StatusOK || r.body != "ok" {
		t.Fatalf("request after ready: %d %q", r.code, r.body)
	}
}

// A request arriving during start-up waits for the agent instead of failing.
func TestRequestWaitsForAgentToBeReady(t *testing.T) {
	addr := testutil.FreeAddr(t)
	s := startSidecar(t, testConfig(addr), false)
	got := make(chan response, 1)
	go func() { got <- get(t, newClient(t), "http://"+s.ServingAddr()+"/hello") }()
	testutil.WaitFor(t, "the request to wait", func() bool { return s.Stats().Queued == 1 })
	serveOn(t, addr, okHandler)
	select {
	case r := <-got:
		if r.code != http.StatusOK || r.body != "ok" {
			t.Fatalf("got %d %q", r.code, r.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("request never completed")
	}
}

func TestHTTPProbeFlipsReadiness(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	var probeUA atomic.Value
	agent := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ready" {
			return
		}
		probeUA.Store(r.UserAgent())
		if !healthy.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	cfg := testConfig(hostOf(agent))
	cfg.ProbePath = "/ready"
	cfg.ProbeRecheckInterval = 10 * time.Millisecond
	cfg.ProbeFailureThreshold = 2
	s := startSidecar(t, cfg, true)
	if ua, _ := probeUA.Load().(string); ua != "flint-sidecar-probe" {
		t.Fatalf("probe User-Agent %q", ua)
	}
	healthy.Store(false)
	testutil.WaitFor(t, "not ready after failed probes", func() bool { return !s.Ready() })
	if r := get(t, newClient(t), "http://"+s.AdminAddr()+wire.PathReadyz); r.code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with a failing agent: %d", r.code)
	}
	healthy.Store(true)
	testutil.WaitFor(t, "ready again", s.Ready)
}

func TestHTTPProbeRedirectCountsAsReady(t *testing.T) {
	agent := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	cfg := testConfig(hostOf(agent))
	cfg.ProbePath = "/ready"
	startSidecar(t, cfg, true)
}

func TestStartupProbeScheduleRampsThenSettles(t *testing.T) {
	interval := 48 * time.Millisecond
	want := []time.Duration{3, 6, 12, 24, 48, 96, 144}
	for i, w := range want {
		if got := startupProbeOffset(i+1, interval); got != w*time.Millisecond {
			t.Errorf("attempt %d at %s, want %s", i+1, got, w*time.Millisecond)
		}
	}
}
