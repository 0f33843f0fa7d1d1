package h1relay_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/h1relay"
	"github.com/flint-dev/flint/internal/testutil"
)

// ---- 7. the client-gone watch ---------------------------------------------

// A client that leaves while its exchange waits on the upstream is noticed
// once the exchange has run 50 ms: the upstream exchange is cut (the
// upstream sees its request cancelled) and Relay returns ErrClientGone.
func TestClientGoneCutsUpstream(t *testing.T) {
	e := start(t, config{})
	clientGone(t, e, 0)
}

// The watch keeps working however long the exchange runs: an exchange
// that outlasts IdleTimeout (the wait for the request that started it)
// still has its client watched.
func TestClientGoneAfterIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	e := start(t, config{idleTimeout: idle})
	clientGone(t, e, 2*idle)
}

// clientGone sends /block, waits until the upstream has it and then for
// linger, closes the client and expects the upstream's request cancelled.
func clientGone(t *testing.T, e *env, linger time.Duration) {
	t.Helper()
	c := e.dial(t)
	c.send(t, get("/block", "x"))
	testutil.WaitFor(t, "the upstream to get /block", func() bool { _, ok := e.agent.find("/block"); return ok })
	time.Sleep(linger)
	_ = c.nc.Close()
	select {
	case <-e.agent.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream's request was not cancelled within 5s of the client leaving")
	}
	r := e.h.next(t)
	if !errors.Is(r.err, h1relay.ErrClientGone) || r.started {
		t.Errorf("Relay returned %v (started %v), want ErrClientGone before any answer", r.err, r.started)
	}
}

// ---- 8. Upstream.Timeout --------------------------------------------------

// Upstream.Timeout bounds the exchange: a slow upstream is cut, Relay
// returns an error matching os.ErrDeadlineExceeded with nothing of an answer
// started, so the handler answers (504 here) on a connection that stays
// usable.
func TestUpstreamTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	e := start(t, config{up: h1relay.Upstream{Timeout: timeout}})
	c := e.dial(t)
	begin := time.Now()
	c.send(t, get("/gate", "x"))
	res, body := c.read(t, "GET")
	elapsed := time.Since(begin)
	if res.StatusCode != http.StatusGatewayTimeout || res.Header.Get("X-Relay-Error") != "1" {
		t.Errorf("answer %d %q, want the handler's 504", res.StatusCode, body)
	}
	if elapsed < timeout*3/4 || elapsed > 5*time.Second {
		t.Errorf("answered after %s; want about the %s timeout", elapsed, timeout)
	}
	r := e.h.next(t)
	if !errors.Is(r.err, os.ErrDeadlineExceeded) || r.started {
		t.Errorf("Relay returned %v (started %v), want os.ErrDeadlineExceeded before any answer", r.err, r.started)
	}
	// The connection goes on.
	c.send(t, get("/next", "x"))
	res, body = c.read(t, "GET")
	wantServedBy(t, res, body, "upstream", "up GET /next ")
}

// CutUpstreams (the drain deadline) ends an exchange in progress as a
// failing upstream connection would: Relay returns a deadline error before
// any answer, and the handler answers.
func TestCutUpstreams(t *testing.T) {
	e := start(t, config{})
	c := e.dial(t)
	c.send(t, get("/gate", "x"))
	testutil.WaitFor(t, "the upstream to get /gate", func() bool { _, ok := e.agent.find("/gate"); return ok })
	e.srv.CutUpstreams()
	res, _ := c.read(t, "GET")
	if res.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("answer %d, want the handler's 504", res.StatusCode)
	}
	if r := e.h.next(t); !errors.Is(r.err, os.ErrDeadlineExceeded) || r.started {
		t.Errorf("Relay returned %v (started %v), want a deadline error before any answer", r.err, r.started)
	}
}

// A connection the relay releases to the pool carries no deadline of the
// relay's: forward.Transport's RoundTrip (the sidecar's net/http path
// shares the pool) may take it next for a request longer than the relay's
// Upstream.Timeout, and must not see it cut by the earlier exchange's
// deadline.
func TestReleasedConnCarriesNoDeadline(t *testing.T) {
	const timeout = time.Second
	e := start(t, config{up: h1relay.Upstream{Timeout: timeout}})
	c := e.dial(t)
	c.send(t, get("/quick", "x"))
	res, body := c.read(t, "GET")
	wantServedBy(t, res, body, "upstream", "up GET /quick ")

	// The next request on the shared pool, taking the released connection,
	// lasts past the relay's deadline.
	req, err := http.NewRequest("GET", "http://"+e.h.upAddr+"/sleep?d=1500ms", nil)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := e.tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip on the pooled connection the relay released: %v", err)
	}
	b, err := io.ReadAll(rt.Body)
	_ = rt.Body.Close()
	if err != nil || rt.StatusCode != 200 || string(b) != "up GET /sleep?d=1500ms " {
		t.Errorf("RoundTrip answer %d %q, %v", rt.StatusCode, b, err)
	}
}

// ---- 9. a pooled connection the upstream closed -----------------------------

// A GET that meets a pooled connection the upstream closed (here, as the
// request arrives: the race the pool's liveness check cannot see) gets
// nothing back; Relay returns ErrNoAnswer with up.Reused() true, and the
// handler sends it again on a fresh connection (the sidecar's rule), so the
// client never sees the failure. Both ways the close can look are covered:
// a FIN (the upstream read the request, then closed) and a reset (it closed
// with the request unread, which the kernel answers with RST). A connection
// the upstream closed well before (while idle in the pool) is caught by the
// liveness check, or else takes the same replay: either way the client
// gets the answer from a fresh connection.
func TestReplayOnClosedPooledConn(t *testing.T) {
	for _, mode := range []closeMode{closeOnArrivalFIN, closeOnArrivalReset, closeWhileIdle} {
		t.Run(mode.String(), func(t *testing.T) {
			upAddr, closed := closingUpstream(t, mode)
			e := start(t, config{upAddr: upAddr})
			c := e.dial(t)
			c.send(t, get("/one", "x"))
			res, body := c.read(t, "GET")
			wantServedBy(t, res, body, "upstream", "conn 1 request 1 /one")
			if r := e.h.next(t); r.err != nil || r.reused {
				t.Fatalf("first Relay: %v (reused %v), want a fresh connection and no error", r.err, r.reused)
			}
			if mode == closeWhileIdle {
				select {
				case <-closed:
				case <-time.After(5 * time.Second):
					t.Fatal("the upstream did not close its idle connection")
				}
				time.Sleep(20 * time.Millisecond) // the FIN reaches the pooled socket
			}

			c.send(t, get("/two", "x"))
			res, body = c.read(t, "GET")
			wantServedBy(t, res, body, "upstream", "conn 2 request 1 /two")
			r := e.h.next(t)
			if mode == closeWhileIdle && r.err == nil {
				if r.reused {
					t.Errorf("Relay succeeded on a reused connection the upstream had closed")
				}
				return // the liveness check discarded the closed connection
			}
			if *loops > 0 {
				// A loop sends the request again itself: the handler sees
				// only the exchange that succeeded, on a fresh connection
				// (conn 2, as the answer says).
				if r.err != nil || r.reused {
					t.Errorf("FinishLoop: %v (reused %v); want success on a fresh connection", r.err, r.reused)
				}
				return
			}
			if !errors.Is(r.err, h1relay.ErrNoAnswer) || !r.reused || r.started {
				t.Errorf("Relay on the pooled connection: %v (reused %v, started %v); want ErrNoAnswer on a reused connection", r.err, r.reused, r.started)
			}
			if r := e.h.next(t); r.err != nil || r.reused {
				t.Errorf("Relay again: %v (reused %v); want success on a fresh connection", r.err, r.reused)
			}
		})
	}
}

type closeMode int

const (
	closeOnArrivalFIN closeMode = iota
	closeOnArrivalReset
	closeWhileIdle
)

func (m closeMode) String() string {
	return [...]string{"fin on arrival", "reset on arrival", "closed while idle"}[m]
}

// closingUpstream answers the first request on each connection with
// "conn N request 1 TARGET", keeping the connection, then closes it as mode
// says: on the next request's arrival (after reading it, or with a reset
// leaving it unread), or at once. closed gets a value on each close.
func closingUpstream(t *testing.T, mode closeMode) (addr string, closed <-chan struct{}) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closes := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 1; ; n++ {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					select {
					case closes <- struct{}{}:
					default:
					}
				}()
				br := bufio.NewReader(nc)
				req, err := http.ReadRequest(br)
				if err != nil {
					_ = nc.Close()
					return
				}
				body := fmt.Sprintf("conn %d request 1 %s", n, req.RequestURI)
				fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\nX-Served-By: upstream\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
				switch mode {
				case closeOnArrivalFIN:
					_, _ = http.ReadRequest(br)
				case closeOnArrivalReset:
					// Wait for the next request, leave it unread and
					// close: the kernel resets the connection.
					if _, err := br.Peek(1); err == nil {
						_ = nc.(*net.TCPConn).SetLinger(0)
					}
				}
				_ = nc.Close()
			}()
		}
	}()
	return ln.Addr().String(), closes
}

// ---- 10. DropResponse -----------------------------------------------------

// Upstream.DropResponse removes the answer headers and trailers it names
// (the sidecar's X-Flint-*, any case) and nothing else.
func TestDropResponseHeaders(t *testing.T) {
	isFlint := func(name []byte) bool {
		return len(name) >= len("X-Flint-") && strings.EqualFold(string(name[:len("X-Flint-")]), "X-Flint-")
	}
	e := start(t, config{up: h1relay.Upstream{DropResponse: isFlint}})
	c := e.dial(t)
	c.send(t, get("/flint", "x"))
	res, body := c.read(t, "GET")
	if res.StatusCode != 200 || body != "flint body" {
		t.Errorf("answer %d %q", res.StatusCode, body)
	}
	for k := range res.Header {
		if isFlint([]byte(k)) {
			t.Errorf("answer header %s: %q passed", k, res.Header[k])
		}
	}
	if res.Header.Get("X-Kept") != "kept" || res.Header.Get("X-Served-By") != "upstream" {
		t.Errorf("answer headers %v lost the ones not dropped", res.Header)
	}
	if v := res.Trailer.Get("X-Flint-Trailer"); v != "" {
		t.Errorf("trailer X-Flint-Trailer: %q passed", v)
	}
	if v := res.Trailer.Get("X-Kept-Trailer"); v != "kt" {
		t.Errorf("trailer X-Kept-Trailer %q, want kt (trailers %v)", v, res.Trailer)
	}
	if e.h.relayed.Load() != 1 {
		t.Errorf("relayed %d, want 1", e.h.relayed.Load())
	}
}

// ---- 11. WatchClient ------------------------------------------------------

// A handler waiting before it relays (the sidecar's queue) learns through
// WatchClient's context that its client left; a client that stays keeps
// the context alive and gets its answer after the wait.
func TestWatchClientDuringWait(t *testing.T) {
	release := make(chan struct{})
	outcome := make(chan string, 2)
	e := start(t, config{wait: func(ex *h1relay.Exchange) bool {
		ctx, stop := ex.WatchClient(context.Background())
		defer stop()
		select {
		case <-ctx.Done():
			outcome <- "gone"
			ex.Close()
			return false
		case <-release:
			outcome <- "released"
			return true
		}
	}})

	leaving := e.dial(t)
	leaving.send(t, get("/leaves", "x"))
	time.Sleep(100 * time.Millisecond) // past the watch's start
	_ = leaving.nc.Close()
	select {
	case o := <-outcome:
		if o != "gone" {
			t.Fatalf("the wait ended %q, want gone", o)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the wait did not learn within 5s that its client left")
	}

	staying := e.dial(t)
	staying.send(t, get("/stays", "x"))
	time.Sleep(150 * time.Millisecond)
	select {
	case o := <-outcome:
		t.Fatalf("the wait ended %q while its client stayed", o)
	default:
	}
	close(release)
	res, body := staying.read(t, "GET")
	wantServedBy(t, res, body, "upstream", "up GET /stays ")
	if o := <-outcome; o != "released" {
		t.Errorf("the wait ended %q, want released", o)
	}
	if _, ok := e.agent.find("/leaves"); ok {
		t.Error("the upstream got the request whose client left")
	}
}
