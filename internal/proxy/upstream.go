package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/flint-dev/flint/internal/bodyrate"
	"github.com/flint-dev/flint/internal/forward"
	"github.com/flint-dev/flint/internal/wire"
)

const (
	bufferSize  = 32 << 10
	dialTimeout = 2 * time.Second
	// idleConnsUnlimited sizes the idle pool when concurrency is unlimited,
	// as the gateway sizes its pool per replica: a pool smaller than the
	// concurrency actually reached closes the surplus connections after
	// every wave of requests and re-dials them for the next (with 100,
	// three waves of 150 concurrent requests dialled ~250 connections, not
	// 150). Idle connections cost a file descriptor until IdleConnTimeout.
	idleConnsUnlimited = 1000
	// upstreamIdleTimeout closes idle connections to the agent before the
	// agent's server does: common agent servers close idle keep-alive
	// connections after 5 s (Node, uvicorn, hypercorn), and a request sent
	// on a connection the agent is closing fails without being retried
	// (POST is not replayable), as a 502. Re-dialling on loopback is cheap,
	// and an HTTP readiness probe (every second) keeps one connection warm.
	upstreamIdleTimeout = 4 * time.Second
)

// newTransport is the sidecar → agent transport: forward.Transport, which
// writes each request in the handler's goroutine (issue 19), over
// net/http's for what it does not carry (upgrades, Expect: 100-continue);
// with -upstream-h2c, net/http's alone.
func newTransport(cfg Config) http.RoundTripper {
	std := newStdTransport(cfg)
	if cfg.UpstreamH2C {
		return std
	}
	return &forward.Transport{
		Dial:            std.DialContext,
		Fallback:        std,
		MaxIdlePerHost:  std.MaxIdleConnsPerHost,
		IdleTimeout:     std.IdleConnTimeout,
		ReadBufferSize:  bufferSize,
		WriteBufferSize: bufferSize,
	}
}

func newStdTransport(cfg Config) *http.Transport {
	// With a cap, at most that many requests are busy at once, plus the
	// readiness prober, which shares the pool so that its connection is
	// the first request's.
	idle := cfg.Concurrency + 1
	if cfg.Concurrency <= 0 {
		idle = idleConnsUnlimited
	}
	t := &http.Transport{
		// Never route loopback traffic to the agent through an environment proxy.
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        idle,
		MaxIdleConnsPerHost: idle,
		IdleConnTimeout:     upstreamIdleTimeout,
		// The client's Accept-Encoding passes through untouched; transparent
		// gzip would rewrite bodies and lengths behind the agent's back.
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
		ReadBufferSize:        bufferSize,
		WriteBufferSize:       bufferSize,
	}
	if cfg.UpstreamH2C {
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return t
}

func (s *Sidecar) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        s.rewrite,
		Transport:      s.transport,
		FlushInterval:  0, // bodies of known length go out in large writes; streams (SSE, unknown length) are flushed per write by ReverseProxy itself
		BufferPool:     bufferPool{},
		ModifyResponse: modifyResponse,
		ErrorHandler:   s.upstreamError,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

var forwardingHeaders = [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

var protoHTTP = []string{"http"}

// rewrite targets the agent, keeping Host and every end-to-end header
// (traceparent, tracestate, ...). Rewrite starts from a request stripped of
// forwarding headers, which the gateway set from what the client really
// sent, so they are restored (unless the caller named them in Connection,
// which makes them its hop's alone) and this hop is appended to
// X-Forwarded-For. X-Forwarded-Host is left as the gateway set it: Host
// itself is preserved.
func (s *Sidecar) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = s.cfg.UpstreamAddr
	// ReverseProxy drops the query parameters Go cannot parse (';'
	// separators, malformed escapes, more than 10,000 of them) and re-encodes
	// the rest, sorted. That guards proxies that decide on parameters they
	// parse differently from the backend; Flint decides on none, so the
	// agent gets the client's query byte for byte, to parse as it means to.
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	in, out := pr.In.Header, pr.Out.Header
	conn := in["Connection"]
	for _, k := range forwardingHeaders {
		if v, ok := in[k]; ok && (len(conn) == 0 || !namesHeader(conn, k)) {
			out[k] = v
		}
	}
	if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
		out["X-Forwarded-For"] = appendForwardedFor(nonEmpty(out["X-Forwarded-For"]), ip)
	}
	if _, ok := out["X-Forwarded-Proto"]; !ok {
		// The serving port is plain HTTP; TLS, if any, ended at the gateway,
		// which then sets this header itself.
		out["X-Forwarded-Proto"] = protoHTTP
	}
}

// forwardedFor is an X-Forwarded-For header value in one allocation: the
// one-element slice and, when they fit, the string's bytes. Behind the
// gateway every request has a prior value to extend, which took two
// allocations (the joined string and the slice).
type forwardedFor struct {
	vals [1]string
	buf  [48]byte // with vals, a 64-byte size class; holds "client, gateway" for IPv4
}

// appendForwardedFor is prior's addresses, then ip, as one header line.
func appendForwardedFor(prior []string, ip string) []string {
	if len(prior) == 0 {
		return []string{ip}
	}
	n := len(ip)
	for _, p := range prior {
		n += len(p) + len(", ")
	}
	f := new(forwardedFor)
	if n > len(f.buf) {
		f.vals[0] = strings.Join(prior, ", ") + ", " + ip
		return f.vals[:]
	}
	b := f.buf[:0]
	for _, p := range prior {
		b = append(b, p...)
		b = append(b, ", "...)
	}
	b = append(b, ip...)
	// The bytes are never written again, and f lives as long as the string.
	f.vals[0] = unsafe.String(&f.buf[0], len(b))
	return f.vals[:]
}

// namesHeader reports whether a Connection header lists name.
func namesHeader(connection []string, name string) bool {
	for _, v := range connection {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), name) {
				return true
			}
		}
	}
	return false
}

// nonEmpty drops empty X-Forwarded-For lines, which would otherwise put an
// empty element before this hop's address.
func nonEmpty(vs []string) []string {
	for _, v := range vs {
		if strings.TrimSpace(v) == "" {
			kept := make([]string, 0, len(vs))
			for _, v := range vs {
				if strings.TrimSpace(v) != "" {
					kept = append(kept, v)
				}
			}
			return kept
		}
	}
	return vs
}

// modifyResponse makes streams end cleanly when this request's context
// ends (request timeout, or the drain deadline): without it the copy error
// would abort the connection mid-chunk, whereas a properly terminated
// stream tells an SSE client to reconnect, and the gateway sends it to
// another replica.
//
// It also removes every X-Flint-* header the agent set: those are markers
// between Flint's own processes (X-Flint-Rejected tells the gateway the
// agent never saw the request and it may resend it), and an agent relaying
// another Flint agent's answer, or a hostile one, must not forge them.
func modifyResponse(res *http.Response) error {
	stripFlintHeaders(res.Header)
	stripFlintHeaders(res.Trailer)
	if res.ContentLength < 0 && res.StatusCode != http.StatusSwitchingProtocols && res.Body != nil && res.Body != http.NoBody {
		res.Body = &streamBody{ReadCloser: res.Body, ctx: res.Request.Context()}
	}
	return nil
}

func stripFlintHeaders(h http.Header) {
	for k := range h {
		if isFlintHeader(k) {
			delete(h, k)
		}
	}
}

// isFlintHeader reports a header name in Flint's own X-Flint-* space.
func isFlintHeader[N ~string | ~[]byte](name N) bool {
	return len(name) >= len(wire.HeaderPrefix) && strings.EqualFold(string(name[:len(wire.HeaderPrefix)]), wire.HeaderPrefix)
}

type streamBody struct {
	io.ReadCloser
	ctx context.Context
}

func (b *streamBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.ctx.Err() != nil {
		// If the client went away the end-of-stream goes nowhere, harmlessly.
		err = io.EOF
	}
	return n, err
}

// upstreamError answers when the agent could not be reached or the request
// ran out of time before any response byte was sent.
func (s *Sidecar) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	rec, _ := w.(*recorder)
	if rec != nil && (rec.hijacked || rec.code != 0) {
		// Too late for an error response; the connection is cut instead.
		s.log.Debug("upstream error after the response started", "err", err)
		return
	}
	ctxErr := r.Context().Err()
	switch {
	case rec != nil && rec.body.TooSlow() || errors.Is(err, bodyrate.ErrTooSlow):
		// Checked first: the server cancels the request's context when the
		// read deadline that caught the client fires.
		w.Header()["Connection"] = []string{"close"}
		writeError(w, http.StatusRequestTimeout, "body-too-slow",
			fmt.Sprintf("the request body arrived slower than %d bytes/s (after %s); send it faster", s.cfg.BodyRate.MinRate, s.cfg.BodyRate.Grace), nil)
	case errors.Is(ctxErr, context.DeadlineExceeded):
		s.agentFailed(w, failTimeout, err)
	case ctxErr != nil && s.aborted():
		s.agentFailed(w, failShutdown, err)
	case ctxErr != nil:
		// The client went away; nobody reads an answer, but one that only
		// closed its sending side must not read an implicit 200.
		w.WriteHeader(statusClientClosed)
	default:
		s.agentFailed(w, failConnection, err)
	}
}

// agentFailure is how a request to the agent ended without an answer.
type agentFailure int

const (
	failTimeout    agentFailure = iota // the request timeout ran out
	failShutdown                       // the drain deadline cut it
	failConnection                     // the agent could not be reached, or its connection failed
)

// agentFailed answers a request the agent did not answer, for both
// serving paths (upstreamError, and the relay's relayError).
func (s *Sidecar) agentFailed(w http.ResponseWriter, f agentFailure, err error) {
	switch {
	case f == failTimeout:
		writeError(w, http.StatusGatewayTimeout, "timeout",
			"the agent did not start responding within the request timeout of "+s.cfg.RequestTimeout.String(), nil)
	case f == failShutdown:
		writeError(w, http.StatusServiceUnavailable, wire.RejectShutdown, "the replica shut down before the agent responded", nil)
	case isDialError(err):
		// The agent never saw the request, so another replica may take it.
		s.errLog.warn(s.log, "cannot reach the agent", "upstream", s.cfg.UpstreamAddr, "err", err)
		writeError(w, http.StatusBadGateway, wire.RejectUpstreamUnavailable, "cannot reach the agent: "+err.Error(), s.rejectedHdr[wire.RejectUpstreamUnavailable])
	default:
		s.errLog.warn(s.log, "request to the agent failed", "upstream", s.cfg.UpstreamAddr, "err", err)
		writeError(w, http.StatusBadGateway, "upstream", "request to the agent failed: "+err.Error(), nil)
	}
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// bufferPool recycles the 32 KiB copy buffers. It pools array pointers so
// that neither Get nor Put allocates (a []byte in an interface would).
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { return new([bufferSize]byte) }}

func (bufferPool) Get() []byte { return buffers.Get().(*[bufferSize]byte)[:] }

func (bufferPool) Put(b []byte) {
	if len(b) == bufferSize {
		buffers.Put((*[bufferSize]byte)(b))
	}
}
