package forward_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A WebSocket-style upgrade switches protocols and carries bytes both ways
// (the forwarder hands upgrades to its fallback).
func TestUpgrade(t *testing.T) {
	forEach(t, func(t *testing.T, rt http.RoundTripper) {
		a := newAgent(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "echo" {
				http.Error(w, "want Upgrade: echo", 400)
				return
			}
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			line, _ := brw.ReadString('\n')
			io.WriteString(c, "echo "+line)
		}))
		c, br := rawConn(t, front(t, rt, a.URL))
		io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != 101 {
			t.Fatalf("upgrade: %v %v", res, err)
		}
		io.WriteString(c, "ping\n")
		if line, err := br.ReadString('\n'); line != "echo ping\n" {
			t.Errorf("over the upgraded connection: %q %v", line, err)
		}
	})
}

// The agent refuses a large body before reading it: the client gets that
// answer, not a 502, and the connection to the agent is not reused.
func TestEarlyAnswerBeforeBodyIsRead(t *testing.T) {
	forEach(t, func(t *testing.T, rt http.RoundTripper) {
		a := newAgent(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > 1<<20 {
				w.Header().Set("Connection", "close")
				http.Error(w, "too large", http.StatusRequestEntityTooLarge)
				return
			}
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, "ok")
		}))
		srv := front(t, rt, a.URL)
		c := client()
		res, err := c.Post(srv.URL, "application/octet-stream", strings.NewReader(strings.Repeat("x", 4<<20)))
		if err != nil {
			t.Fatal(err)
		}
		if b := readAll(t, res); res.StatusCode != 413 {
			t.Errorf("got %d %q, want the agent's 413", res.StatusCode, b)
		}
		res, err = c.Post(srv.URL, "text/plain", strings.NewReader("small"))
		if err != nil {
			t.Fatal(err)
		}
		if b := readAll(t, res); res.StatusCode != 200 || b != "ok" {
			t.Errorf("next request: %d %q", res.StatusCode, b)
		}
	})
}

// An agent that dies mid-response leaves the client with a cut body, never
// a complete-looking one, for both framings.
func TestAgentCutMidResponse(t *testing.T) {
	for _, framing := range []string{"content-length", "chunked"} {
		t.Run(framing, func(t *testing.T) {
			forEach(t, func(t *testing.T, rt http.RoundTripper) {
				a := newAgent(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					c, _, _ := http.NewResponseController(w).Hijack()
					if framing == "chunked" {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
					} else {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")
					}
					time.Sleep(50 * time.Millisecond)
					c.Close()
				}))
				res, err := client().Get(front(t, rt, a.URL).URL)
				if err != nil {
					return // cut before the header reached the client: also not a success
				}
				b, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err == nil {
					t.Errorf("client read %q and a clean end; want an error", b)
				}
			})
		})
	}
}

// rawAgent answers each request on a connection with a keep-alive 200 and
// then, as configured, closes the connection while it is idle or on
// receiving the next request without answering it. It counts what it
// received by method and path.
type rawAgent struct {
	ln       net.Listener
	mu       sync.Mutex
	received []string
	conns    atomic.Int64
}

func newRawAgent(t *testing.T, closeIdleAfter time.Duration, dropSecond bool) *rawAgent {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &rawAgent{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.conns.Add(1)
			go a.serve(c, closeIdleAfter, dropSecond)
		}
	}()
	return a
}

func (a *rawAgent) serve(c net.Conn, closeIdleAfter time.Duration, dropSecond bool) {
	defer c.Close()
	br := bufio.NewReader(c)
	for n := 0; ; n++ {
		if n == 1 && closeIdleAfter > 0 {
			c.SetReadDeadline(time.Now().Add(closeIdleAfter))
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		if req.URL.Path == "/slow" {
			time.Sleep(200 * time.Millisecond) // so that requests at once take a connection each
		}
		a.mu.Lock()
		a.received = append(a.received, req.Method+" "+req.URL.Path)
		a.mu.Unlock()
		if n == 1 && dropSecond {
			return // read, never answered: closed as if its idle timeout had just fired
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}
}

func (a *rawAgent) count(s string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, r := range a.received {
		if r == s {
			n++
		}
	}
	return n
}

// An agent that closed a kept-alive connection while it was idle costs
// nothing: the next request, replayable or not, is answered.
func TestAgentClosedIdleConnection(t *testing.T) {
	forEach(t, func(t *testing.T, rt http.RoundTripper) {
		a := newRawAgent(t, 20*time.Millisecond, false)
		srv := front(t, rt, "http://"+a.ln.Addr().String())
		c := client()
		for _, method := range []string{"GET", "POST"} {
			res, err := c.Get(srv.URL + "/warm")
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, res)
			time.Sleep(500 * time.Millisecond) // the agent closes the idle connection after 20 ms
			req, _ := http.NewRequest(method, srv.URL+"/after-idle", strings.NewReader("b"))
			if method == "GET" {
				req.Body, req.ContentLength = nil, 0
			}
			res, err = c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if b := readAll(t, res); res.StatusCode != 200 || b != "ok" {
				t.Errorf("%s after the agent closed the idle connection: %d %q", method, res.StatusCode, b)
			}
		}
	})
}

// A request sent on a kept-alive connection that the agent closes on
// receiving it (the idle-timeout race) is resent once if it is a GET, and
// never resent if it is a POST (the agent may have acted on it).
func TestClosedOnArrivalRetriesOnlyReplayable(t *testing.T) {
	forEach(t, func(t *testing.T, rt http.RoundTripper) {
		for _, method := range []string{"GET", "POST"} {
			a := newRawAgent(t, 0, true)
			srv := front(t, rt, "http://"+a.ln.Addr().String())
			c := client()
			res, err := c.Get(srv.URL + "/warm")
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, res)
			req, _ := http.NewRequest(method, srv.URL+"/second", strings.NewReader("b"))
			if method == "GET" {
				req.Body, req.ContentLength = nil, 0
			}
			res, err = c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, res)
			n := a.count(method + " /second")
			switch method {
			case "GET":
				if res.StatusCode != 200 || n != 2 {
					t.Errorf("GET: status %d, agent received it %d times; want 200 after one resend", res.StatusCode, n)
				}
			case "POST":
				if res.StatusCode != http.StatusBadGateway || n != 1 {
					t.Errorf("POST: status %d, agent received it %d times; want 502 and no resend", res.StatusCode, n)
				}
			}
		}
	})
}

// When every kept-alive connection in the pool was closed by the agent (a
// sidecar draining closes its idle ones), a GET is resent on each in turn
// and then on a fresh one, as net/http does, not failed after one resend.
func TestClosedOnArrivalRetriesEveryPooledConnection(t *testing.T) {
	forEach(t, func(t *testing.T, rt http.RoundTripper) {
		a := newRawAgent(t, 0, true)
		srv := front(t, rt, "http://"+a.ln.Addr().String())
		c := client()
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				if res, err := c.Get(srv.URL + "/slow"); err == nil {
					readAll(t, res)
				}
			})
		}
		wg.Wait()
		if n := a.conns.Load(); n != 2 {
			t.Fatalf("%d connections to the agent after two requests at once, want 2", n)
		}
		res, err := c.Get(srv.URL + "/second")
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, res)
		if n := a.count("GET /second"); res.StatusCode != 200 || n != 3 {
			t.Errorf("status %d, agent received it %d times; want 200 after a resend on each pooled connection and a fresh one", res.StatusCode, n)
		}
	})
}

// A response header section over the limit is refused (502), not read
// without bound.
func TestResponseHeaderLimit(t *testing.T) {
	forEach(t, func(t *testing.T, rt http.RoundTripper) {
		a := newAgent(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Big", strings.Repeat("b", 2*headerLimit))
		}))
		res, err := client().Get(front(t, rt, a.URL).URL)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, res)
		if res.StatusCode != http.StatusBadGateway {
			t.Errorf("status %d, want 502", res.StatusCode)
		}
	})
}

// A client that goes away, or a request timeout, closes the connection to
// the slow agent: the agent's request ends, and the connection is not
// reused.
func TestCancellationClosesUpstreamConnection(t *testing.T) {
	forEach(t, func(t *testing.T, rt http.RoundTripper) {
		ended := make(chan error, 4)
		a := newAgent(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/fast" {
				return
			}
			w.WriteHeader(200)
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				ended <- r.Context().Err()
			case <-time.After(10 * time.Second):
				ended <- errors.New("the agent's request outlived its client")
			}
		}))
		srv := front(t, rt, a.URL)
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/slow", nil)
		res, err := client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 7)
		io.ReadFull(res.Body, buf)
		cancel()
		res.Body.Close()
		if err := <-ended; !errors.Is(err, context.Canceled) {
			t.Errorf("agent's request: %v", err)
		}
		before := a.conns.Load()
		res, err = client().Get(srv.URL + "/fast")
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, res)
		if a.conns.Load() != before+1 {
			t.Errorf("the cancelled request's connection was reused (connections %d → %d)", before, a.conns.Load())
		}
	})
}

// A slow agent is waited for; many sequential requests share one
// connection.
func TestSlowAgentAndReuse(t *testing.T) {
	forEach(t, func(t *testing.T, rt http.RoundTripper) {
		a := newAgent(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				time.Sleep(300 * time.Millisecond)
			}
			io.WriteString(w, r.URL.Path)
		}))
		srv := front(t, rt, a.URL)
		c := client()
		for _, p := range []string{"/slow", "/a", "/b", "/c"} {
			res, err := c.Get(srv.URL + p)
			if err != nil {
				t.Fatal(err)
			}
			if b := readAll(t, res); b != p {
				t.Errorf("%s: %q", p, b)
			}
		}
		if n := a.conns.Load(); n != 1 {
			t.Errorf("%d connections to the agent, want 1", n)
		}
	})
}
