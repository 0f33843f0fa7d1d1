package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/flint-dev/flint/internal/testutil"
	"github.com/flint-dev/flint/internal/wire"
)

func TestCapacityRejectsExactlyWhenFull(t *testing.T) {
	const n = 3
	agent := newGated()
	cfg := testConfig(hostOf(upstream(t, agent)))
	cfg.Concurrency = n
	cfg.RetryAfter = 1500 * time.Millisecond // rounds up to 2
	s := startSidecar(t, cfg, true)
	c := newClient(t)
	base := "http://" + s.ServingAddr()

	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if r := get(t, c, fmt.Sprintf("%s/slow/%d", base, i)); r.code != http.StatusOK {
				t.Errorf("slow request %d: status %d", i, r.code)
			}
		})
	}
	agent.waitArrivals(t, n)
	if st := s.Stats(); st.InFlight != n {
		t.Fatalf("in flight = %d, want %d", st.InFlight, n)
	}

	r := get(t, c, base+"/fast")
	if r.code != http.StatusServiceUnavailable {
		t.Fatalf("request %d: status %d, want 503", n+1, r.code)
	}
	if got := r.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2", got)
	}
	if got := r.header.Get(wire.HeaderRejected); got != "capacity" {
		t.Errorf("%s = %q, want capacity", wire.HeaderRejected, got)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	e := decodeError(t, r.body)
	if e.Reason != "capacity" || e.RetryAfterSeconds == nil || *e.RetryAfterSeconds != 2 || e.Error == "" {
		t.Errorf("body = %s", r.body)
	}

	agent.release <- struct{}{}
	testutil.WaitFor(t, "a slot to free", func() bool { return s.Stats().InFlight == n-1 })
	if r := get(t, c, base+"/fast"); r.code != http.StatusOK || r.body != "fast" {
		t.Fatalf("after a slot freed: %d %q, want 200", r.code, r.body)
	}
	for range n - 1 {
		agent.release <- struct{}{}
	}
	wg.Wait()
	st := s.Stats()
	if st.RejectedTotal != 1 || st.RequestsTotal != n+1 || st.InFlight != 0 || st.Concurrency != n {
		t.Fatalf("stats = %+v", st)
	}
}

func TestQueueWaitsForSlot(t *testing.T) {
	agent := newGated()
	cfg := testConfig(hostOf(upstream(t, agent)))
	cfg.Concurrency = 1
	cfg.QueueDepth = 1
	s := startSidecar(t, cfg, true)
	c := newClient(t)
	base := "http://" + s.ServingAddr()

	first := make(chan response, 1)
	go func() { first <- get(t, c, base+"/first") }()
	agent.waitArrivals(t, 1)
	queued := make(chan response, 1)
	go func() { queued <- get(t, c, base+"/fast") }()
	testutil.WaitFor(t, "the second request to queue", func() bool { return s.Stats().Queued == 1 })

	if r := get(t, c, base+"/fast"); r.code != http.StatusServiceUnavailable || r.header.Get(wire.HeaderRejected) != "capacity" {
		t.Fatalf("third request with slot and queue full: %d %v", r.code, r.header)
	}
	select {
	case r := <-queued:
		t.Fatalf("queued request finished while the slot was held: %d", r.code)
	case <-time.After(50 * time.Millisecond):
	}
	agent.release <- struct{}{}
	if r := <-first; r.code != http.StatusOK {
		t.Fatalf("first: %d", r.code)
	}
	if r := <-queued; r.code != http.StatusOK || r.body != "fast" {
		t.Fatalf("queued request after the slot freed: %d %q", r.code, r.body)
	}
	if st := s.Stats(); st.QueuedSeconds <= 0 || st.Queued != 0 {
		t.Fatalf("stats = %+v, want a positive queued integral and nothing queued now", st)
	}
}

func TestQueueTimeout(t *testing.T) {
	agent := newGated()
	cfg := testConfig(hostOf(upstream(t, agent)))
	cfg.Concurrency = 1
	cfg.QueueDepth = 1
	cfg.QueueTimeout = 100 * time.Millisecond
	s := startSidecar(t, cfg, true)
	c := newClient(t)
	base := "http://" + s.ServingAddr()
	held := make(chan response, 1)
	go func() { held <- get(t, c, base+"/hold") }()
	agent.waitArrivals(t, 1)
	start := time.Now()
	r := get(t, c, base+"/fast")
	if r.code != http.StatusServiceUnavailable || r.header.Get(wire.HeaderRejected) != "capacity" {
		t.Fatalf("got %d %v", r.code, r.header)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond || waited > 2*time.Second {
		t.Fatalf("waited %s for a 100ms queue timeout", waited)
	}
	agent.release <- struct{}{}
	if r := <-held; r.code != http.StatusOK {
		t.Fatalf("held request: %d", r.code)
	}
}

func TestHeadersPassThrough(t *testing.T) {
	seen := make(chan *http.Request, 1)
	agent := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		w.Header().Set("X-Agent", "yes")
		w.WriteHeader(http.StatusTeapot)
	}))
	s := startSidecar(t, testConfig(hostOf(agent)), true)
	c := newClient(t)
	r := do(t, c, http.MethodGet, "http://"+s.ServingAddr()+"/v1/thing?q=1", http.Header{
		"Traceparent":       {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		"Tracestate":        {"flint=1"},
		"X-Forwarded-For":   {"203.0.113.9"},
		"X-Forwarded-Proto": {"https"},
		"X-Forwarded-Host":  {"api.example"},
	})
	if r.code != http.StatusTeapot || r.header.Get("X-Agent") != "yes" {
		t.Fatalf("response %d %v not passed through", r.code, r.header)
	}
	in := <-seen
	checks := map[string][2]string{
		"path":              {in.URL.RequestURI(), "/v1/thing?q=1"},
		"traceparent":       {in.Header.Get("Traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		"tracestate":        {in.Header.Get("Tracestate"), "flint=1"},
		"X-Forwarded-For":   {in.Header.Get("X-Forwarded-For"), "203.0.113.9, 127.0.0.1"},
		"X-Forwarded-Proto": {in.Header.Get("X-Forwarded-Proto"), "https"},
		"X-Forwarded-Host":  {in.Header.Get("X-Forwarded-Host"), "api.example"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
}

func TestHostPreserved(t *testing.T) {
	host := make(chan string, 1)
	agent := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { host <- r.Host }))
	s := startSidecar(t, testConfig(hostOf(agent)), true)
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.ServingAddr()+"/", nil)
	req.Host = "echo.agents.example"
	resp, err := newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := <-host; h != "echo.agents.example" {
		t.Fatalf("agent saw Host %q", h)
	}
}

// Every path on the serving port belongs to the agent, including the ones
// the admin port serves.
func TestAdminPathsNotOnServingPort(t *testing.T) {
	agent := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "agent "+r.Method+" "+r.URL.Path)
	}))
	s := startSidecar(t, testConfig(hostOf(agent)), true)
	c := newClient(t)
	for _, p := range []struct{ method, path string }{
		{"GET", wire.PathStats}, {"GET", wire.PathHealthz}, {"GET", wire.PathReadyz}, {"GET", wire.PathMetrics},
		{"POST", wire.PathDrain}, {"GET", wire.PathWaitForDrain},
	} {
		r := do(t, c, p.method, "http://"+s.ServingAddr()+p.path, nil)
		if want := "agent " + p.method + " " + p.path; r.code != http.StatusOK || r.body != want {
			t.Errorf("%s %s on the serving port: %d %q, want the agent's %q", p.method, p.path, r.code, r.body, want)
		}
	}
	if s.Draining() {
		t.Fatal("POST /drain on the serving port drained the sidecar")
	}
}

func TestSSEStreamsIncrementally(t *testing.T) {
	second := make(chan struct{})
	agent := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-second:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: two\n\n")
	}))
	s := startSidecar(t, testConfig(hostOf(agent)), true)
	resp, err := newClient(t).Get("http://" + s.ServingAddr() + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	lineCh := make(chan string, 1)
	go func() {
		l, _ := br.ReadString('\n')
		lineCh <- l
	}()
	select {
	case l := <-lineCh:
		if l != "data: one\n" {
			t.Fatalf("first line %q", l)
		}
	case <-time.After(5 * time.Second):
		close(second)
		t.Fatal("first event did not arrive before the agent wrote the second: the sidecar buffers")
	}
	close(second)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: two\n\n" {
		t.Fatalf("rest = %q, %v", rest, err)
	}
}

func TestWebSocketEcho(t *testing.T) {
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
			if err := conn.Write(r.Context(), typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	}))
	s := startSidecar(t, testConfig(hostOf(agent)), true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+s.ServingAddr()+"/ws", &websocket.DialOptions{HTTPClient: newClient(t)})
	if err != nil {
		t.Fatalf("dial through the sidecar: %v", err)
	}
	for i := range 3 {
		msg := fmt.Sprintf("hello %d", i)
		if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := conn.Read(ctx)
		if err != nil || string(got) != "echo: "+msg {
			t.Fatalf("read %q, %v", got, err)
		}
	}
	if st := s.Stats(); st.InFlight != 1 {
		t.Fatalf("an open WebSocket should hold a slot; in flight = %d", st.InFlight)
	}
	if err := conn.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close: %v", err)
	}
	testutil.WaitFor(t, "the WebSocket's slot to be released", func() bool { return s.Stats().InFlight == 0 })
}

func TestUpstreamRefusedIs502AndRetryable(t *testing.T) {
	agent := upstream(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	cfg := testConfig(hostOf(agent))
	cfg.ProbeRecheckInterval = time.Hour // keep the replica "ready" after the agent dies
	s := startSidecar(t, cfg, true)
	agent.Close()
	r := get(t, newClient(t), "http://"+s.ServingAddr()+"/")
	if r.code != http.StatusBadGateway || r.header.Get(wire.HeaderRejected) != "upstream-unavailable" {
		t.Fatalf("got %d %v %s", r.code, r.header, r.body)
	}
	if e := decodeError(t, r.body); e.Reason != "upstream-unavailable" || !strings.Contains(e.Error, "cannot reach the agent") {
		t.Fatalf("body %s", r.body)
	}
}

func TestRequestTimeout(t *testing.T) {
	agent := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: tick\n\n")
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	}))
	cfg := testConfig(hostOf(agent))
	cfg.RequestTimeout = 100 * time.Millisecond
	s := startSidecar(t, cfg, true)
	c := newClient(t)

	r := get(t, c, "http://"+s.ServingAddr()+"/slow")
	if r.code != http.StatusGatewayTimeout || decodeError(t, r.body).Reason != "timeout" {
		t.Fatalf("slow request: %d %s", r.code, r.body)
	}
	if r.header.Get(wire.HeaderRejected) != "" {
		t.Fatal("a timed-out request reached the agent; it must not be marked safe to retry")
	}
	// A stream that outlives the timeout ends cleanly: the client reads a
	// proper end of stream, not a cut connection.
	r = get(t, c, "http://"+s.ServingAddr()+"/stream")
	if r.code != http.StatusOK || r.body != "data: tick\n\n" {
		t.Fatalf("stream: %d %q", r.code, r.body)
	}
}

func TestH2CFromGateway(t *testing.T) {
	agent := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	s := startSidecar(t, testConfig(hostOf(agent)), true)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := (&http.Client{Transport: tr}).Get("http://" + s.ServingAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 || string(b) != "ok" {
		t.Fatalf("proto %s body %q", resp.Proto, b)
	}
}

// A client that gives up while queued must not reach the agent, and its
// place must come back.
func TestQueuedClientLeaves(t *testing.T) {
	agent := newGated()
	cfg := testConfig(hostOf(upstream(t, agent)))
	cfg.Concurrency = 1
	cfg.QueueDepth = 1
	s := startSidecar(t, cfg, true)
	c := newClient(t)
	base := "http://" + s.ServingAddr()

	held := make(chan response, 1)
	go func() { held <- get(t, c, base+"/hold") }()
	agent.waitArrivals(t, 1)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/queued", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	testutil.WaitFor(t, "the request to queue", func() bool { return s.Stats().Queued == 1 })
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("cancelled request got a response")
	}
	testutil.WaitFor(t, "the queue to empty", func() bool { return s.Stats().Queued == 0 })

	// The place is free again: a new request queues and is served.
	next := make(chan response, 1)
	go func() { next <- get(t, c, base+"/fast") }()
	testutil.WaitFor(t, "the next request to queue", func() bool { return s.Stats().Queued == 1 })
	agent.release <- struct{}{}
	<-held
	if r := <-next; r.code != http.StatusOK {
		t.Fatalf("next request: %d", r.code)
	}
	select {
	case p := <-agent.arrived:
		t.Fatalf("the agent saw %s, which the client had abandoned", p)
	default:
	}
	if st := s.Stats(); st.RequestsTotal != 2 || st.RejectedTotal != 0 {
		t.Fatalf("stats = %+v, want 2 admitted and no rejections", st)
	}
}

func TestUpstreamH2C(t *testing.T) {
	agentSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	agentSrv.Config.Protocols = new(http.Protocols)
	agentSrv.Config.Protocols.SetUnencryptedHTTP2(true)
	agentSrv.Start()
	t.Cleanup(agentSrv.Close)
	cfg := testConfig(hostOf(agentSrv))
	cfg.UpstreamH2C = true
	s := startSidecar(t, cfg, true)
	if r := get(t, newClient(t), "http://"+s.ServingAddr()+"/"); r.code != http.StatusOK || r.body != "HTTP/2.0" {
		t.Fatalf("agent saw %d %q, want HTTP/2.0", r.code, r.body)
	}
}
