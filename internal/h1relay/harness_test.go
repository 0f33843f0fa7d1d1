package h1relay_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/forward"
	"github.com/flint-dev/flint/internal/h1relay"
)

// The server tests (server_test.go, shutdown_test.go, upstream_test.go,
// takeback_test.go) run a real h1relay.Server on a loopback listener, with a
// handler shaped like the sidecar's (internal/proxy/relay.go): it borrows a
// pooled forward.Transport connection to an upstream, relays, releases or
// closes the connection, and answers errors itself. Clients are raw TCP
// connections, so every byte on the wire is the test's choice.

// loops runs every server test on event loops (Server.Loops): hack/test.sh
// runs the package once without and once with them.
var loops = flag.Int("loops", 0, "serve with this many event loops")

// ---- the handler ----------------------------------------------------------

// relayHandler is the sidecar's ServeRelay/relay loop without admission.
type relayHandler struct {
	tr     *forward.Transport
	upAddr string
	up     h1relay.Upstream
	// refuse, when set and true, makes ServeRelay hand the request to the
	// fallback.
	refuse func(ex *h1relay.Exchange) bool
	// wait, when set, runs before the request goes upstream (the
	// sidecar's queue); false means it answered or closed instead.
	wait func(ex *h1relay.Exchange) bool

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
	if h.wait != nil && !h.wait(ex) {
		return true
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
		answerFailure(ex, res, err)
		return true
	}
}

// answerFailure answers an exchange that failed before its answer started.
func answerFailure(ex *h1relay.Exchange, res h1relay.Response, err error) {
	switch {
	case res.Started:
	case errors.Is(err, h1relay.ErrClientGone):
		ex.Close()
	case errors.Is(err, os.ErrDeadlineExceeded):
		answerError(ex, http.StatusGatewayTimeout, err)
	default:
		answerError(ex, http.StatusBadGateway, err)
	}
}

// AdmitLoop, WriteLoopHead and FinishLoop are ServeRelay on the loops: a
// request refuse or wait would hold goes to ServeRelay instead.
func (h *relayHandler) AdmitLoop(ex *h1relay.Exchange) (string, *h1relay.Upstream, bool) {
	if (h.refuse != nil && h.refuse(ex)) || h.wait != nil {
		return "", nil, false
	}
	h.relayed.Add(1)
	return h.upAddr, &h.up, true
}

func (h *relayHandler) WriteLoopHead(w *bufio.Writer, ex *h1relay.Exchange) { writeHead(w, ex) }

func (h *relayHandler) FinishLoop(ex *h1relay.Exchange, res h1relay.Response, err error) bool {
	select {
	case h.results <- relayResult{string(ex.Head.Target), err, res.Started, res.Status, res.Reused}:
	default:
	}
	if err != nil {
		answerFailure(ex, res, err)
	}
	return true
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
	wait                      func(ex *h1relay.Exchange) bool
	fallback                  http.Handler // default: the env's fallbackHandler
	loops                     int          // event loops whatever -loops says
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
	e.h = &relayHandler{tr: e.tr, upAddr: upAddr, up: cfg.up, refuse: cfg.refuse, wait: cfg.wait, results: make(chan relayResult, 256)}
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
		Loops:             max(cfg.loops, *loops),
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

// served is one answer readServed expects: who served it, and its body.
type served struct{ who, body string }

// readServed reads one answer per entry of want, in order.
func (c *client) readServed(t *testing.T, want ...served) {
	t.Helper()
	for _, w := range want {
		res, body := c.read(t, "GET")
		wantServedBy(t, res, body, w.who, w.body)
	}
}

func wantServedBy(t *testing.T, res *http.Response, body, who, wantBody string) {
	t.Helper()
	if res.StatusCode != http.StatusOK || res.Header.Get("X-Served-By") != who || body != wantBody {
		t.Errorf("answer %d, X-Served-By %q, body %q; want 200 from %s with body %q",
			res.StatusCode, res.Header.Get("X-Served-By"), body, who, wantBody)
	}
}
