package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/flint-dev/flint/internal/testutil"
	"github.com/flint-dev/flint/internal/wire"
)

func TestDrainSequence(t *testing.T) {
	agent := newGated()
	cfg := testConfig(hostOf(upstream(t, agent)))
	cfg.DrainDelay = 400 * time.Millisecond
	s := startSidecar(t, cfg, true)
	c := newClient(t)
	serving, admin := "http://"+s.ServingAddr(), "http://"+s.AdminAddr()

	inflight := make(chan response, 1)
	go func() { inflight <- get(t, c, serving+"/slow") }()
	agent.waitArrivals(t, 1)
	waited := make(chan response, 1)
	go func() { waited <- get(t, newClient(t), admin+wire.PathWaitForDrain) }()

	start := time.Now()
	s.cancel() // what SIGTERM does to the caller's context
	testutil.WaitFor(t, "readiness to fail", func() bool { return !s.Ready() })
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Fatalf("readiness took %s to fail", d)
	}
	if r := get(t, c, admin+wire.PathReadyz); r.code != http.StatusServiceUnavailable || decodeReadyz(t, r.body) != "draining" {
		t.Fatalf("/readyz while draining: %d %s", r.code, r.body)
	}

	// Endpoint removal has not reached every caller yet: keep serving, but
	// close each connection after its response.
	r := get(t, c, serving+"/fast")
	if r.code != http.StatusOK || !r.close {
		t.Fatalf("request during the drain delay: %d, connection close requested: %v", r.code, r.close)
	}
	if time.Since(start) >= cfg.DrainDelay {
		t.Fatal("test too slow to check serving during the drain delay")
	}
	if st := s.Stats(); !st.Draining || st.Ready {
		t.Fatalf("stats while draining: %+v", st)
	}

	// After the delay the serving port closes; the in-flight request lives on.
	testutil.WaitFor(t, "the serving port to close", func() bool {
		conn, err := net.DialTimeout("tcp", s.ServingAddr(), time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	if d := time.Since(start); d < cfg.DrainDelay {
		t.Fatalf("serving port closed after %s, before the %s drain delay", d, cfg.DrainDelay)
	}
	select {
	case r := <-waited:
		t.Fatalf("/wait-for-drain returned (%d) while a request was in flight", r.code)
	case <-time.After(100 * time.Millisecond):
	}
	agent.release <- struct{}{}
	if r := <-inflight; r.code != http.StatusOK || r.body != "done /slow" {
		t.Fatalf("in-flight request: %d %q", r.code, r.body)
	}
	if r := <-waited; r.code != http.StatusOK {
		t.Fatalf("/wait-for-drain: %d %s", r.code, r.body)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("Serve after a clean drain: %v", err)
	}
}

func decodeReadyz(t *testing.T, body string) string {
	t.Helper()
	var v struct{ Reason string }
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("readyz body %q: %v", body, err)
	}
	return v.Reason
}

func TestDrainViaAdminPost(t *testing.T) {
	s := startSidecar(t, testConfig(hostOf(upstream(t, okHandler))), true)
	r := do(t, newClient(t), http.MethodPost, "http://"+s.AdminAddr()+wire.PathDrain, nil)
	if r.code != http.StatusAccepted {
		t.Fatalf("POST /drain: %d", r.code)
	}
	if s.Ready() || !s.Draining() {
		t.Fatal("POST /drain answered before readiness failed")
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		s.done <- err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after POST /drain")
	}
}

func TestDrainWaitsForWebSocket(t *testing.T) {
	agent := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		for {
			typ, msg, err := conn.Read(r.Context())
			if err != nil {
				return
			}
			_ = conn.Write(r.Context(), typ, msg)
		}
	}))
	s := startSidecar(t, testConfig(hostOf(agent)), true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+s.ServingAddr()+"/ws", &websocket.DialOptions{HTTPClient: newClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	s.Drain()
	select {
	case err := <-s.done:
		t.Fatalf("Serve returned (%v) with a WebSocket open", err)
	case <-time.After(200 * time.Millisecond):
	}
	// Still usable during the drain.
	if err := conn.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := conn.Read(ctx); err != nil || string(msg) != "ping" {
		t.Fatalf("echo during drain: %q %v", msg, err)
	}
	_ = conn.Close(websocket.StatusNormalClosure, "")
	if err := s.stop(t); err != nil {
		t.Fatalf("Serve after the WebSocket closed: %v", err)
	}
}

// At the drain deadline everything left is cut: streams end cleanly so
// clients reconnect elsewhere, WebSockets close, queued requests get a
// retryable 503, and Serve says the drain timed out.
func TestDrainTimeoutCutsWhatIsLeft(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		_, _, _ = conn.Read(r.Context())
	})
	cfg := testConfig(hostOf(upstream(t, mux)))
	cfg.Concurrency = 2
	cfg.QueueDepth = 1
	cfg.QueueTimeout = time.Minute
	cfg.DrainTimeout = 300 * time.Millisecond
	s := startSidecar(t, cfg, true)
	c := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	resp, err := c.Get("http://" + s.ServingAddr() + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	streamErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		streamErr <- err
	}()
	ws, _, err := websocket.Dial(ctx, "ws://"+s.ServingAddr()+"/ws", &websocket.DialOptions{HTTPClient: newClient(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	queued := make(chan response, 1)
	go func() { queued <- get(t, c, "http://"+s.ServingAddr()+"/events") }()
	testutil.WaitFor(t, "a request to queue", func() bool { return s.Stats().Queued == 1 })

	start := time.Now()
	s.Drain()
	err = s.stop(t)
	if !errors.Is(err, ErrDrainTimeout) {
		t.Fatalf("Serve = %v, want ErrDrainTimeout", err)
	}
	if d := time.Since(start); d < cfg.DrainTimeout || d > cfg.DrainTimeout+3*time.Second {
		t.Fatalf("drain took %s with a %s timeout", d, cfg.DrainTimeout)
	}
	if err := <-streamErr; err != nil {
		t.Fatalf("SSE stream was cut (%v); it should end cleanly", err)
	}
	if _, _, err := ws.Read(ctx); err == nil {
		t.Fatal("WebSocket still open after the drain deadline")
	}
	r := <-queued
	if r.code != http.StatusServiceUnavailable || r.header.Get(wire.HeaderRejected) != "shutdown" {
		t.Fatalf("queued request at the deadline: %d %v %s", r.code, r.header, r.body)
	}
	if st := s.Stats(); st.InFlight != 0 || st.Queued != 0 {
		t.Fatalf("after the drain: %+v", st)
	}
}
