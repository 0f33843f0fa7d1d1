package h1relay_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/forward"
	"github.com/flint-dev/flint/internal/h1relay"
	"github.com/flint-dev/flint/internal/testutil"
)

// The tests below run a real h1relay.Server on a loopback listener, with a
// handler shaped like the sidecar's (internal/proxy/relay.go): it borrows a
// pooled forward.Transport connection to an upstream, relays, releases or
// closes the connection, and answers errors itself. Clients are raw TCP
// connections, so every byte on the wire is the test's choice.

// ---- the handler ----------------------------------------------------------

// relayHandler is the sidecar's ServeRelay/relay loop without admission.
type relayHandler struct {
	tr     *forward.Transport
	upAddr string
	up     h1relay.Upstream
	// refuse, when set and true, makes ServeRelay hand the request to the
	// fallback.
	refuse func(ex *h1relay.Exchange) bool

	relayed atomic.Int64     // requests ServeRelay took
	results chan relayResult // every Relay call's outcome
}

type relayResult struct {
	target  string
	err     error
	started bool
	status  int
	reused  bool
}

func (h *relayHandler) ServeRelay(ex *h1relay.Exchange) bool {
	if h.refuse != nil && h.refuse(ex) {
		return false
	}
	h.relayed.Add(1)
	target := string(ex.Head.Target)
	for {
		up, err := h.tr.Raw(context.Background(), h.upAddr)
		if err != nil {
			answerError(ex, http.StatusBadGateway, err)
			return true
		}
		writeHead(up.Writer(), ex)
		res, err := ex.Relay(up, &h.up)
		select {
		case h.results <- relayResult{target, err, res.Started, res.Status, res.Reused}:
		default:
		}
		if err == nil {
			return true
		}
		// The sidecar's rule: a replayable request that met a pooled
		// connection the upstream had closed goes again on the next one.
		if ex.Resend(res, err) {
			continue
		}
		switch {
		case res.Started:
		case errors.Is(err, h1relay.ErrClientGone):
			ex.Close()
		case errors.Is(err, os.ErrDeadlineExceeded):
			answerError(ex, http.StatusGatewayTimeout, err)
		default:
			answerError(ex, http.StatusBadGateway, err)
		}
		return true
	}
}

// writeHead is the sidecar's writeRelayHead: the target and the
// end-to-end headers as the client sent them, this hop appended to
// X-Forwarded-For, X-Forwarded-Proto defaulted to http.
func writeHead(w *bufio.Writer, ex *h1relay.Exchange) {
	ex.WriteRequestLine(w, ex.Head.Target)
	ex.WriteFields(w, nil)
	ex.WriteForwardedFor(w, true)
	if _, ok := ex.Head.Get("X-Forwarded-Proto"); !ok {
		h1relay.WriteField(w, "X-Forwarded-Proto", []byte("http"))
	}
	_, _ = w.WriteString("\r\n")
}

func answerError(ex *h1relay.Exchange, code int, err error) {
	ex.Header().Set("Content-Type", "text/plain; charset=utf-8")
	ex.Header().Set("X-Relay-Error", "1")
	ex.Respond(code, []byte(err.Error()))
}

// next is the next Relay outcome, waiting for it.
func (h *relayHandler) next(t *testing.T) relayResult {
	t.Helper()
	select {
	case r := <-h.results:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no Relay call within 10s")
		return relayResult{}
	}
}

// ---- the upstream (agent) and the fallback ----------------------------------

// seen is what a server received for one request.
type seen struct {
	method, uri, proto, host, body string
	header                         http.Header
}

// recorder keeps the requests a server received, in order.
type recorder struct {
	mu   sync.Mutex
	reqs []seen
}

func (r *recorder) add(req *http.Request, body []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, seen{req.Method, req.RequestURI, req.Proto, req.Host, string(body), req.Header.Clone()})
}

func (r *recorder) all() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.reqs...)
}

// find is the last request with the given target, and whether there was one.
func (r *recorder) find(uri string) (seen, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.reqs) - 1; i >= 0; i-- {
		if r.reqs[i].uri == uri {
			return r.reqs[i], true
		}
	}
	return seen{}, false
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// agent is the upstream: it records each request and answers
// "up METHOD URI BODY", except on these paths:
//
//	/gate   waits for release (or its request's end) before answering
//	/block  waits for its request's context to end, then reports it
//	/sleep  sleeps for ?d= before answering
//	/flint  answers with X-Flint-* headers and trailers among others
type agent struct {
	recorder
	release     chan struct{}
	releaseOnce sync.Once
	cancelled   chan string // /block requests whose context ended
}

// open lets every /gate request answer.
func (a *agent) open() { a.releaseOnce.Do(func() { close(a.release) }) }

func newAgent() *agent {
	return &agent{release: make(chan struct{}), cancelled: make(chan string, 16)}
}

func (a *agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.add(r, body)
	switch r.URL.Path {
	case "/gate":
		select {
		case <-a.release:
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Second):
		}
	case "/block":
		select {
		case <-r.Context().Done():
			a.cancelled <- r.RequestURI
		case <-time.After(10 * time.Second):
		}
		return
	case "/sleep":
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	case "/flint":
		w.Header().Set("Trailer", "X-Flint-Trailer, X-Kept-Trailer")
		w.Header().Set("X-Flint-Secret", "s3cret")
		w.Header()["x-flint-lower"] = []string{"lower"}
		w.Header().Set("X-Kept", "kept")
		w.Header().Set("X-Served-By", "upstream")
		_, _ = io.WriteString(w, "flint body")
		w.(http.Flusher).Flush() // chunked, so the trailers go out
		w.Header().Set("X-Flint-Trailer", "t")
		w.Header().Set("X-Kept-Trailer", "kt")
		return
	}
	w.Header().Set("X-Served-By", "upstream")
	fmt.Fprintf(w, "up %s %s %s", r.Method, r.RequestURI, body)
}

// fallbackHandler answers "fallback METHOD URI PROTO BODY".
type fallbackHandler struct{ recorder }

func (f *fallbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.add(r, body)
	w.Header().Set("X-Served-By", "fallback")
	fmt.Fprintf(w, "fallback %s %s %s %s", r.Method, r.RequestURI, r.Proto, body)
}

// ---- the harness ----------------------------------------------------------

type config struct {
	up                        h1relay.Upstream
	upAddr                    string // an upstream of the test's own; default: an httptest agent
	idleTimeout, readHeader   time.Duration
	fallbackReadHeaderTimeout time.Duration
	refuse                    func(ex *h1relay.Exchange) bool
	fallback                  http.Handler // default: the env's fallbackHandler
}

type env struct {
	srv      *h1relay.Server
	addr     string
	agent    *agent
	tr       *forward.Transport
	h        *relayHandler
	fallback *fallbackHandler
	handoffs atomic.Int64 // connections the fallback was given

	served   chan struct{} // closed when Serve returned
	serveErr error
}

func start(t *testing.T, cfg config) *env {
	t.Helper()
	e := &env{served: make(chan struct{}), fallback: &fallbackHandler{}}
	upAddr := cfg.upAddr
	if upAddr == "" {
		e.agent = newAgent()
		up := httptest.NewServer(e.agent)
		t.Cleanup(func() {
			e.agent.open()
			up.CloseClientConnections()
			up.Close()
		})
		upAddr = up.Listener.Addr().String()
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	e.tr = &forward.Transport{Dial: dialer.DialContext, Fallback: http.DefaultTransport, MaxIdlePerHost: 8}
	t.Cleanup(e.tr.CloseIdleConnections)
	e.h = &relayHandler{tr: e.tr, upAddr: upAddr, up: cfg.up, refuse: cfg.refuse, results: make(chan relayResult, 256)}
	var fallback http.Handler = e.fallback
	if cfg.fallback != nil {
		fallback = cfg.fallback
	}
	e.srv = &h1relay.Server{
		Handler: e.h,
		Fallback: &http.Server{
			Handler:           fallback,
			ReadHeaderTimeout: cfg.fallbackReadHeaderTimeout,
			ErrorLog:          log.New(io.Discard, "", 0),
			ConnState: func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					e.handoffs.Add(1)
				}
			},
		},
		IdleTimeout:       cfg.idleTimeout,
		ReadHeaderTimeout: cfg.readHeader,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	go func() {
		e.serveErr = e.srv.Serve(ln)
		close(e.served)
	}()
	t.Cleanup(func() {
		_ = e.srv.Close()
		select {
		case <-e.served:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return within 5s of Close")
			_ = ln.Close()
		}
	})
	return e
}

// client is a raw connection to the relay.
type client struct {
	nc net.Conn
	br *bufio.Reader
}

func (e *env) dial(t *testing.T) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &client{nc: nc, br: bufio.NewReader(nc)}
}

func (c *client) send(t *testing.T, s string) {
	t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.nc, s); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// read reads one answer (to a request of the given method) and its body.
func (c *client) read(t *testing.T, method string) (*http.Response, string) {
	t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading the answer's body: %v", err)
	}
	return res, string(b)
}

// closedWithin reports nil once the server closed the connection (EOF or
// reset), or an error when it is still open after d or sent bytes.
func (c *client) closedWithin(d time.Duration) error {
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, 512)
	n, err := c.br.Read(b)
	switch {
	case n > 0:
		return fmt.Errorf("unexpected bytes %q", b[:n])
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("connection still open after %s", d)
	case err == io.EOF, errors.Is(err, syscall.ECONNRESET):
		return nil
	default:
		return fmt.Errorf("read: %v", err)
	}
}

func get(target, host string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
}

func wantServedBy(t *testing.T, res *http.Response, body, who, wantBody string) {
	t.Helper()
	if res.StatusCode != http.StatusOK || res.Header.Get("X-Served-By") != who || body != wantBody {
		t.Errorf("answer %d, X-Served-By %q, body %q; want 200 from %s with body %q",
			res.StatusCode, res.Header.Get("X-Served-By"), body, who, wantBody)
	}
}

// ---- 1. relaying ----------------------------------------------------------

// A plain GET and a POST with a small body are relayed, not handed off: the
// upstream gets the method and the target byte for byte, the Host, the
// body, X-Forwarded-For with the client's address appended to the incoming
// lines (joined), and X-Forwarded-Proto defaulted to http (kept when sent).
func TestRelaysPlainRequests(t *testing.T) {
	e := start(t, config{})
	c := e.dial(t)

	const getTarget = "/a/b;v=1/%7Euser:x@y?q=x%20y&z=/?&empty="
	c.send(t, "GET "+getTarget+" HTTP/1.1\r\nHost: api.example.test:8080\r\n"+
		"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.2\r\nX-Other: o\r\n\r\n")
	res, body := c.read(t, http.MethodGet)
	wantServedBy(t, res, body, "upstream", "up GET "+getTarget+" ")

	const postBody = "hello, relay\r\n\r\nstill the body"
	c.send(t, "POST /submit?id=42 HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: text/plain\r\n"+
		"Content-Length: "+strconv.Itoa(len(postBody))+"\r\nX-Forwarded-Proto: https\r\n\r\n"+postBody)
	res, body = c.read(t, http.MethodPost)
	wantServedBy(t, res, body, "upstream", "up POST /submit?id=42 "+postBody)

	if n := e.h.relayed.Load(); n != 2 {
		t.Errorf("the relay served %d requests, want 2", n)
	}
	if n := e.fallback.count(); n != 0 || e.handoffs.Load() != 0 {
		t.Errorf("the fallback served %d requests on %d connections, want none", n, e.handoffs.Load())
	}

	g, ok := e.agent.find(getTarget)
	if !ok {
		t.Fatalf("the upstream did not see %s; saw %+v", getTarget, e.agent.all())
	}
	if g.method != "GET" || g.host != "api.example.test:8080" || g.body != "" || g.header.Get("X-Other") != "o" {
		t.Errorf("upstream saw %s %s Host %q body %q X-Other %q", g.method, g.uri, g.host, g.body, g.header.Get("X-Other"))
	}
	if xff := g.header.Values("X-Forwarded-For"); len(xff) != 1 || xff[0] != "203.0.113.7, 198.51.100.2, 127.0.0.1" {
		t.Errorf("upstream saw X-Forwarded-For %q, want one line %q", xff, "203.0.113.7, 198.51.100.2, 127.0.0.1")
	}
	if p := g.header.Values("X-Forwarded-Proto"); len(p) != 1 || p[0] != "http" {
		t.Errorf("upstream saw X-Forwarded-Proto %q, want [http]", p)
	}

	p, ok := e.agent.find("/submit?id=42")
	if !ok {
		t.Fatal("the upstream did not see the POST")
	}
	if p.method != "POST" || p.host != "api.example.test" || p.body != postBody || p.header.Get("Content-Type") != "text/plain" {
		t.Errorf("upstream saw %s %s Host %q body %q Content-Type %q", p.method, p.uri, p.host, p.body, p.header.Get("Content-Type"))
	}
	if xff := p.header.Values("X-Forwarded-For"); len(xff) != 1 || xff[0] != "127.0.0.1" {
		t.Errorf("upstream saw X-Forwarded-For %q, want [127.0.0.1]", xff)
	}
	if p := p.header.Values("X-Forwarded-Proto"); len(p) != 1 || p[0] != "https" {
		t.Errorf("upstream saw X-Forwarded-Proto %q, want the client's [https]", p)
	}
}

// ---- 2. handoff -----------------------------------------------------------

// Each request the relay does not take goes, with the connection, to the
// fallback, which answers it correctly (its handler sees the request
// whole), and the requests that follow on that connection keep working,
// served by the fallback from then on, even ones the relay would take.
func TestHandsOffToFallback(t *testing.T) {
	big := strings.Repeat("b", h1relay.MaxBody+1)
	cases := []struct {
		name string
		// exchange writes the request and reads its answer.
		exchange func(t *testing.T, c *client) (*http.Response, string)
		method   string
		uri      string
		proto    string
		body     string
	}{
		{
			name: "chunked body",
			exchange: func(t *testing.T, c *client) (*http.Response, string) {
				c.send(t, "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
				return c.read(t, "POST")
			},
			method: "POST", uri: "/chunked", proto: "HTTP/1.1", body: "hello world",
		},
		{
			name: "Upgrade",
			exchange: func(t *testing.T, c *client) (*http.Response, string) {
				c.send(t, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
				return c.read(t, "GET")
			},
			method: "GET", uri: "/ws", proto: "HTTP/1.1",
		},
		{
			name: "Expect 100-continue",
			exchange: func(t *testing.T, c *client) (*http.Response, string) {
				c.send(t, "PUT /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
				res, _ := c.read(t, "PUT")
				if res.StatusCode != http.StatusContinue {
					t.Errorf("first answer %d, want 100 Continue before the body", res.StatusCode)
				}
				c.send(t, "data")
				return c.read(t, "PUT")
			},
			method: "PUT", uri: "/expect", proto: "HTTP/1.1", body: "data",
		},
		{
			name: "HTTP/1.0",
			exchange: func(t *testing.T, c *client) (*http.Response, string) {
				c.send(t, "GET /old HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
				return c.read(t, "GET")
			},
			method: "GET", uri: "/old", proto: "HTTP/1.0",
		},
		{
			name: "head over 16 KiB",
			exchange: func(t *testing.T, c *client) (*http.Response, string) {
				c.send(t, "GET /bighead HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("h", 17<<10)+"\r\n\r\n")
				return c.read(t, "GET")
			},
			method: "GET", uri: "/bighead", proto: "HTTP/1.1",
		},
		{
			name: "body over MaxBody",
			exchange: func(t *testing.T, c *client) (*http.Response, string) {
				c.send(t, "POST /bigbody HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(len(big))+"\r\n\r\n"+big)
				return c.read(t, "POST")
			},
			method: "POST", uri: "/bigbody", proto: "HTTP/1.1", body: big,
		},
		{
			name: "ServeRelay refuses",
			exchange: func(t *testing.T, c *client) (*http.Response, string) {
				c.send(t, "GET /refused HTTP/1.1\r\nHost: x\r\nX-Refuse: yes\r\n\r\n")
				return c.read(t, "GET")
			},
			method: "GET", uri: "/refused", proto: "HTTP/1.1",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, config{refuse: func(ex *h1relay.Exchange) bool {
				_, ok := ex.Head.Get("X-Refuse")
				return ok
			}})
			c := e.dial(t)
			// A request the relay takes first: the handoff happens mid-connection.
			c.send(t, get("/first", "x"))
			res, body := c.read(t, "GET")
			wantServedBy(t, res, body, "upstream", "up GET /first ")

			res, body = tc.exchange(t, c)
			wantServedBy(t, res, body, "fallback", fmt.Sprintf("fallback %s %s %s %s", tc.method, tc.uri, tc.proto, tc.body))
			s, ok := e.fallback.find(tc.uri)
			if !ok {
				t.Fatalf("the fallback did not see %s; saw %d requests", tc.uri, e.fallback.count())
			}
			if s.method != tc.method || s.proto != tc.proto || s.body != tc.body || s.host != "x" {
				t.Errorf("the fallback saw %s %s %s Host %q and a %d-byte body", s.method, s.uri, s.proto, s.host, len(s.body))
			}

			// Later requests on the connection: the fallback's now.
			for _, target := range []string{"/after1", "/after2?x=1"} {
				c.send(t, get(target, "x"))
				res, body = c.read(t, "GET")
				wantServedBy(t, res, body, "fallback", "fallback GET "+target+" HTTP/1.1 ")
			}
			if n := e.h.relayed.Load(); n != 1 {
				t.Errorf("the relay served %d requests, want only the first", n)
			}
			if n := e.handoffs.Load(); n != 1 {
				t.Errorf("%d connections handed off, want 1", n)
			}
			if _, ok := e.agent.find(tc.uri); ok {
				t.Errorf("the upstream saw %s: the relay sent it on", tc.uri)
			}
		})
	}
}

// ---- 3. pipelining --------------------------------------------------------

// Requests pipelined in one write are answered in order on the same
// connection: the relay serves the first two, hands off at the third with
// the fourth already read, and the fallback serves both.
func TestPipelinedHandoff(t *testing.T) {
	e := start(t, config{})
	c := e.dial(t)
	c.send(t, get("/p1", "x")+get("/p2?q=2", "x")+
		"POST /p3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"+
		get("/p4", "x"))
	want := []struct{ who, body string }{
		{"upstream", "up GET /p1 "},
		{"upstream", "up GET /p2?q=2 "},
		{"fallback", "fallback POST /p3 HTTP/1.1 abc"},
		{"fallback", "fallback GET /p4 HTTP/1.1 "},
	}
	for _, w := range want {
		res, body := c.read(t, "GET")
		wantServedBy(t, res, body, w.who, w.body)
	}
	if n := e.h.relayed.Load(); n != 2 {
		t.Errorf("the relay served %d requests, want 2", n)
	}
	if n := e.handoffs.Load(); n != 1 {
		t.Errorf("%d connections handed off, want 1", n)
	}
}

// ---- 4. Connection: close ---------------------------------------------------

// A client that sends Connection: close gets an answer saying so and the
// connection closes after it; the upstream does not get the hop-by-hop
// Connection header.
func TestClientConnectionClose(t *testing.T) {
	e := start(t, config{})
	c := e.dial(t)
	c.send(t, "GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	res, body := c.read(t, "GET")
	wantServedBy(t, res, body, "upstream", "up GET /bye ")
	if !res.Close { // ReadResponse takes "Connection: close" out of the header into Close
		t.Error("the answer does not say Connection: close")
	}
	if err := c.closedWithin(5 * time.Second); err != nil {
		t.Error(err)
	}
	if s, ok := e.agent.find("/bye"); !ok || s.header.Get("Connection") != "" {
		t.Errorf("upstream saw %v, Connection %q; want the request without Connection", ok, s.header.Get("Connection"))
	}
	if e.h.relayed.Load() != 1 || e.handoffs.Load() != 0 {
		t.Errorf("relayed %d, handed off %d; want 1, 0", e.h.relayed.Load(), e.handoffs.Load())
	}
}

// ---- 5. Shutdown ----------------------------------------------------------

// Shutdown stops accepting, closes a kept-alive idle connection at once,
// lets a request in flight finish with an answer that says Connection:
// close (then closes that connection), and returns only once both are done;
// Serve returns http.ErrServerClosed.
func TestShutdown(t *testing.T) {
	e := start(t, config{})
	idle := e.dial(t)
	idle.send(t, get("/warm", "x"))
	res, body := idle.read(t, "GET")
	wantServedBy(t, res, body, "upstream", "up GET /warm ")

	busy := e.dial(t)
	busy.send(t, get("/gate", "x"))
	testutil.WaitFor(t, "the upstream to get /gate", func() bool { _, ok := e.agent.find("/gate"); return ok })

	shutdownDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdownDone <- e.srv.Shutdown(ctx)
	}()

	if err := idle.closedWithin(5 * time.Second); err != nil {
		t.Errorf("the idle connection: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-shutdownDone:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	if nc, err := net.DialTimeout("tcp", e.addr, time.Second); err == nil {
		_ = nc.Close()
		t.Error("a new connection was accepted after Shutdown")
	}

	e.agent.open() // the upstream answers now
	res, body = busy.read(t, "GET")
	wantServedBy(t, res, body, "upstream", "up GET /gate ")
	if !res.Close {
		t.Error("the answer in flight during Shutdown does not say Connection: close")
	}
	if err := busy.closedWithin(5 * time.Second); err != nil {
		t.Errorf("the busy connection after its answer: %v", err)
	}

	select {
	case err := <-shutdownDone:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return within 5s of the last answer")
	}
	select {
	case <-e.served:
		if !errors.Is(e.serveErr, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", e.serveErr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return within 5s of Shutdown")
	}
}

// Shutdown before Serve (a stop signal during start-up) makes the later
// Serve return http.ErrServerClosed at once, as net/http's does, rather than
// serve a listener nobody will stop.
func TestShutdownBeforeServe(t *testing.T) {
	srv := &h1relay.Server{Handler: &relayHandler{}, Fallback: &http.Server{}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	case <-time.After(2 * time.Second):
		_ = ln.Close()
		<-served
		t.Error("Serve after Shutdown still accepting after 2s (it returned only once the test closed the listener)")
	}
}

// ---- 6. timeouts on the client side -----------------------------------------

// A client that sends half a head and stalls is disconnected once
// ReadHeaderTimeout has passed, by the relay itself: the partial head is not
// handed to the fallback, which would start a fresh header timeout of its
// own (here a long one, as the sidecar's 30s).
func TestReadHeaderTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	e := start(t, config{readHeader: timeout, fallbackReadHeaderTimeout: 30 * time.Second})
	c := e.dial(t)
	begin := time.Now()
	c.send(t, "GET /stall HTTP/1.1\r\nHost: x\r\n")
	err := c.closedWithin(5 * time.Second)
	elapsed := time.Since(begin)
	if err != nil {
		t.Errorf("half a head, then silence: %v (the relay handed %d connections to the fallback)", err, e.handoffs.Load())
	} else if elapsed < timeout*3/4 {
		t.Errorf("disconnected after %s, before the %s ReadHeaderTimeout", elapsed, timeout)
	}
	if n := e.handoffs.Load(); n != 0 {
		t.Errorf("the stalled partial head was handed to the fallback (%d connections)", n)
	}
	if n := e.fallback.count() + int(e.h.relayed.Load()); n != 0 {
		t.Errorf("%d requests served, want none", n)
	}
}

// A kept-alive connection with no next request is closed after IdleTimeout.
func TestIdleTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	e := start(t, config{idleTimeout: timeout})
	c := e.dial(t)
	c.send(t, get("/once", "x"))
	res, body := c.read(t, "GET")
	wantServedBy(t, res, body, "upstream", "up GET /once ")
	begin := time.Now()
	if err := c.closedWithin(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(begin); elapsed < timeout/2 {
		t.Errorf("closed after %s, well before the %s IdleTimeout", elapsed, timeout)
	}
}

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
