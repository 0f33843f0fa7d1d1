package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"
)

const (
	bufferSize  = 32 << 10
	dialTimeout = 2 * time.Second
	// idleConnsUnlimited sizes the connection pool when concurrency is
	// unlimited; with a cap, the cap is exactly how many connections can be
	// busy at once, so keeping that many idle avoids re-dialling under load.
	idleConnsUnlimited = 100
)

func newTransport(cfg Config) *http.Transport {
	idle := cfg.Concurrency
	if idle <= 0 {
		idle = idleConnsUnlimited
	}
	t := &http.Transport{
		// Never route loopback traffic to the agent through an environment proxy.
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        idle,
		MaxIdleConnsPerHost: idle,
		IdleConnTimeout:     90 * time.Second,
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
// sent, so they are restored and this hop is appended to X-Forwarded-For.
// X-Forwarded-Host is left as the gateway set it: Host itself is preserved.
func (s *Sidecar) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = s.cfg.UpstreamAddr
	in, out := pr.In.Header, pr.Out.Header
	for _, k := range forwardingHeaders {
		if v, ok := in[k]; ok {
			out[k] = v
		}
	}
	if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
		if prior := out["X-Forwarded-For"]; len(prior) > 0 {
			out["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + ip}
		} else {
			out["X-Forwarded-For"] = []string{ip}
		}
	}
	if _, ok := out["X-Forwarded-Proto"]; !ok {
		// The serving port is plain HTTP; TLS, if any, ended at the gateway,
		// which then sets this header itself.
		out["X-Forwarded-Proto"] = protoHTTP
	}
}

// modifyResponse makes streams end cleanly when this request's context
// ends (request timeout, or the drain deadline): without it the copy error
// would abort the connection mid-chunk, whereas a properly terminated
// stream tells an SSE client to reconnect, and the gateway sends it to
// another replica.
func modifyResponse(res *http.Response) error {
	if res.ContentLength < 0 && res.StatusCode != http.StatusSwitchingProtocols && res.Body != nil && res.Body != http.NoBody {
		res.Body = &streamBody{ReadCloser: res.Body, ctx: res.Request.Context()}
	}
	return nil
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
	case errors.Is(ctxErr, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, "timeout",
			"the agent did not start responding within the request timeout of "+s.cfg.RequestTimeout.String(), nil)
	case ctxErr != nil && s.aborted():
		writeError(w, http.StatusServiceUnavailable, "shutdown", "the replica shut down before the agent responded", nil)
	case ctxErr != nil:
		// The client went away; nobody reads an answer.
		if rec != nil {
			rec.code = statusClientClosed
		}
	case isDialError(err):
		// The agent never saw the request, so another replica may take it.
		s.errLog.warn(s.log, "cannot reach the agent", "upstream", s.cfg.UpstreamAddr, "err", err)
		writeError(w, http.StatusBadGateway, RejectUpstreamUnavailable, "cannot reach the agent: "+err.Error(), s.rejectedHdr[RejectUpstreamUnavailable])
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
