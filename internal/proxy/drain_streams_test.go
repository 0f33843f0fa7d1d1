package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sseAgent serves the event streams the drain tests open:
//
//	GET /standalone  one event, then silence (an MCP session's GET stream)
//	GET /ticker      an event every 20ms until the request ends
//	GET /partial     half an event, then the rest when /partial is released
//	GET /stuck       half an event, then nothing
//	POST /call       an event, then the result when the call is released
type sseAgent struct {
	partialSent, callStarted chan struct{}
	releasePartial, release  chan struct{}
}

func newSSEAgent() *sseAgent {
	return &sseAgent{
		partialSent: make(chan struct{}, 10), callStarted: make(chan struct{}, 10),
		releasePartial: make(chan struct{}), release: make(chan struct{}),
	}
}

func (a *sseAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	flush := func() { _ = http.NewResponseController(w).Flush() }
	switch r.URL.Path {
	case "/standalone":
		_, _ = io.WriteString(w, "id: 1\ndata: hello\n\n")
		flush()
		<-r.Context().Done()
	case "/ticker":
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "id: %d\ndata: tick %d\n\n", i, i); err != nil {
				return
			}
			flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	case "/partial", "/stuck":
		_, _ = io.WriteString(w, "data: first\n\ndata: sec")
		flush()
		a.partialSent <- struct{}{}
		if r.URL.Path == "/stuck" {
			<-r.Context().Done()
			return
		}
		select {
		case <-a.releasePartial:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "ond\n\n")
		flush()
		<-r.Context().Done()
	case "/call":
		_, _ = io.WriteString(w, "event: message\ndata: progress\n\n")
		flush()
		a.callStarted <- struct{}{}
		select {
		case <-a.release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "event: message\ndata: result\n\n")
	}
}

type streamResult struct {
	body string
	err  error
	at   time.Duration // since the test's start
}

// openStream sends method path accepting an event stream, reads seen from
// it, and reads the rest to its end in the background.
func openStream(t *testing.T, c *http.Client, base, method, path string, start time.Time, seen string) <-chan streamResult {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%s %s: %d %v", method, path, res.StatusCode, res.Header)
	}
	// The agent having written seen is not the client having it: the
	// sidecar may still be copying it when the test starts a drain.
	first := make([]byte, len(seen))
	if _, err := io.ReadFull(res.Body, first); err != nil || string(first) != seen {
		res.Body.Close()
		t.Fatalf("%s %s: read %q (%v), want %q first", method, path, first, err, seen)
	}
	done := make(chan streamResult, 1)
	go func() {
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		done <- streamResult{body: seen + string(b), err: err, at: time.Since(start)}
	}()
	return done
}

func awaitStream(t *testing.T, what string, ch <-chan streamResult) streamResult {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("%s was cut (%v), want a clean end; got %q", what, r.err, r.body)
		}
		return r
	case <-time.After(20 * time.Second):
		t.Fatalf("%s still open", what)
		return streamResult{}
	}
}

// During a drain, GET event streams (no request in progress) end cleanly
// between two events once the serving port has closed and the grace has
// passed, well before the drain timeout; a POST streaming a tool call's
// answer keeps going until the agent finishes it, and the drain then ends
// without cutting anything.
func TestDrainEndsEventStreamsButNotStreamedAnswers(t *testing.T) {
	agent := newSSEAgent()
	cfg := testConfig(hostOf(upstream(t, agent)))
	cfg.DrainDelay = 100 * time.Millisecond
	cfg.EventStreamGrace = 300 * time.Millisecond
	cfg.DrainTimeout = 30 * time.Second
	s := startSidecar(t, cfg, true)
	c := newClient(t)
	base := "http://" + s.ServingAddr()
	start := time.Now()

	standalone := openStream(t, c, base, http.MethodGet, "/standalone", start, "")
	ticker := openStream(t, c, base, http.MethodGet, "/ticker", start, "")
	call := openStream(t, c, base, http.MethodPost, "/call", start, "")
	<-agent.callStarted

	drainAt := time.Since(start)
	s.Drain()
	bound := drainAt + cfg.DrainDelay + cfg.EventStreamGrace + 2*time.Second
	for _, st := range []struct {
		name string
		ch   <-chan streamResult
	}{{"the standalone GET stream", standalone}, {"the ticking GET stream", ticker}} {
		r := awaitStream(t, st.name, st.ch)
		if r.at > bound {
			t.Errorf("%s ended %s after the drain started, want within %s", st.name, r.at-drainAt, bound-drainAt)
		}
		if r.at < drainAt+cfg.DrainDelay+cfg.EventStreamGrace {
			t.Errorf("%s ended %s after the drain started, before the drain delay and grace", st.name, r.at-drainAt)
		}
		if !strings.HasSuffix(r.body, "\n\n") || !strings.HasPrefix(r.body, "id: ") {
			t.Errorf("%s did not end between two events: %q", st.name, r.body)
		}
	}

	select {
	case r := <-call:
		t.Fatalf("the POST streaming its answer ended during the drain: %q %v", r.body, r.err)
	case <-time.After(500 * time.Millisecond):
	}
	close(agent.release)
	if r := awaitStream(t, "the POST's answer", call); r.body != "event: message\ndata: progress\n\nevent: message\ndata: result\n\n" {
		t.Errorf("the POST's answer: %q", r.body)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("Serve = %v, want a clean drain", err)
	}
	if d := time.Since(start) - drainAt; d > 10*time.Second {
		t.Errorf("drain took %s", d)
	}
}

// A stream caught in the middle of an event ends after that event; one
// whose event never completes ends anyway within the boundary wait, its
// partial event (which an SSE client drops) last.
func TestDrainEndsEventStreamAtEventBoundary(t *testing.T) {
	agent := newSSEAgent()
	cfg := testConfig(hostOf(upstream(t, agent)))
	cfg.EventStreamGrace = 0
	s := startSidecar(t, cfg, true)
	c := newClient(t)
	base := "http://" + s.ServingAddr()
	start := time.Now()

	partial := openStream(t, c, base, http.MethodGet, "/partial", start, "data: first\n\ndata: sec")
	stuck := openStream(t, c, base, http.MethodGet, "/stuck", start, "data: first\n\ndata: sec")
	<-agent.partialSent
	<-agent.partialSent
	drainAt := time.Since(start)
	s.Drain()
	select {
	case r := <-partial:
		t.Fatalf("the stream ended mid-event: %q %v", r.body, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	close(agent.releasePartial)
	if r := awaitStream(t, "the stream caught mid-event", partial); r.body != "data: first\n\ndata: second\n\n" {
		t.Errorf("the stream caught mid-event: %q, want it to end after the event", r.body)
	}
	r := awaitStream(t, "the stream whose event never completes", stuck)
	if r.body != "data: first\n\ndata: sec" {
		t.Errorf("the stuck stream: %q", r.body)
	}
	if d := r.at - drainAt; d < boundaryWait || d > boundaryWait+3*time.Second {
		t.Errorf("the stuck stream ended %s after the drain, want about %s", d, boundaryWait)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("Serve = %v, want a clean drain", err)
	}
}

func TestIsStreamRequest(t *testing.T) {
	for _, tc := range []struct {
		method, accept, upgrade string
		want                    bool
	}{
		{"GET", "text/event-stream", "", true},
		{"GET", "application/json, text/event-stream", "", true},
		{"GET", "application/json", "", false},
		{"GET", "", "", false},
		{"POST", "application/json, text/event-stream", "", false},
		{"GET", "text/event-stream", "websocket", false},
	} {
		r, _ := http.NewRequest(tc.method, "http://x/", nil)
		if tc.accept != "" {
			r.Header.Set("Accept", tc.accept)
		}
		if tc.upgrade != "" {
			r.Header.Set("Upgrade", tc.upgrade)
		}
		if got := isStreamRequest(r); got != tc.want {
			t.Errorf("%s Accept %q Upgrade %q: %v, want %v", tc.method, tc.accept, tc.upgrade, got, tc.want)
		}
	}
}
