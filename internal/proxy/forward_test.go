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

	"github.com/flint-dev/flint/internal/forward"
)

// The sidecar reaches a plain-HTTP agent through forward.Transport, and an
// agent whose server closes idle keep-alive connections sooner than the
// sidecar's 4 s idle timeout still gets every POST once: the connection it
// closed is noticed before reuse, not written to (a POST on it would be a
// 502, not being replayable).
func TestAgentClosingIdleConnectionsEarlyLosesNoPOST(t *testing.T) {
	var posts, conns atomic.Int64
	agent := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	}))
	agent.Config.IdleTimeout = 30 * time.Millisecond
	agent.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	agent.Start()
	t.Cleanup(agent.Close)
	cfg := testConfig(hostOf(agent))
	cfg.ProbeRecheckInterval = time.Hour
	s := startSidecar(t, cfg, true)
	if _, ok := s.transport.(*forward.Transport); !ok {
		t.Fatalf("sidecar transport is %T, want *forward.Transport", s.transport)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	const n = 5
	for i := range n {
		res, err := c.Post("http://"+s.ServingAddr()+"/x", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || string(b) != "hello" {
			t.Fatalf("POST %d: %d %q", i, res.StatusCode, b)
		}
		time.Sleep(150 * time.Millisecond) // the agent closes the idle connection
	}
	if got := posts.Load(); got != n {
		t.Errorf("agent received %d POSTs, want %d", got, n)
	}
	if got := conns.Load(); got < n {
		t.Errorf("agent saw %d connections; its idle close should have forced %d", got, n)
	}
}
