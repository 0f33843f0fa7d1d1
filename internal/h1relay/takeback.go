package h1relay

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// takeBack wraps the fallback server's handler. A connection the relay
// handed over because it could not parse a request (handOff's back) comes
// back to the relay once net/http has served that request, when the
// connection can go on exactly as net/http would have kept it: an HTTP/1.1 request not asking to close or upgrade, its
// body read to the end, and a final answer framed by its Content-Length
// (or without a body) written whole, not saying Connection: close (a
// length-framed answer carries no trailers: net/http drops them). So one
// unusual request (a chunked or large body, a request that had to wait)
// does not move a kept-alive connection — a gateway's pooled connection to
// a sidecar, above all — off the relay for good. Everything else (streams,
// chunked answers, upgrades, errors) stays with net/http, which closes or
// keeps the connection by its own rules.
type takeBack struct {
	s    *Server
	next http.Handler
}

type handedConnKey struct{}

// wrapFallback installs takeBack, and a ConnContext that lets it find the
// connection a request came on (before the role's own ConnContext).
func (s *Server) wrapFallback() {
	f := s.Fallback
	if _, ok := f.Handler.(*takeBack); ok {
		return
	}
	next := f.Handler
	if next == nil {
		next = http.DefaultServeMux
	}
	f.Handler = &takeBack{s: s, next: next}
	role := f.ConnContext
	f.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if pc, ok := c.(*prefixConn); ok && pc.back {
			ctx = context.WithValue(ctx, handedConnKey{}, pc)
		}
		if role != nil {
			ctx = role(ctx, c)
		}
		return ctx
	}
}

func (t *takeBack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Context().Value(handedConnKey{}) == nil ||
		r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.Close || r.Method == http.MethodConnect || r.Header.Get("Upgrade") != "" {
		t.next.ServeHTTP(w, r)
		return
	}
	var body *eofBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &eofBody{ReadCloser: r.Body}
		r.Body = body
	}
	aw := &answerWriter{ResponseWriter: w, bodiless: r.Method == http.MethodHead}
	t.next.ServeHTTP(aw, r)
	if !aw.complete() || (body != nil && !body.eof.Load()) || t.s.closing.Load() {
		return
	}
	t.s.resume(w)
}

// resume takes the connection of w, whose answer is complete, back from
// net/http and serves its next requests on the relay.
func (s *Server) resume(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return
	}
	nc, brw, err := rc.Hijack()
	if err != nil {
		return
	}
	// Bytes net/http read past the request (a pipelined next one) come first.
	buffered, _ := brw.Reader.Peek(brw.Reader.Buffered())
	nc, pending := unwrapConn(nc, bytes.Clone(buffered))
	_ = nc.SetDeadline(time.Time{}) // net/http's, and the handler's
	if s.adopt(nc, pending) {
		return
	}
	if len(pending) > 0 {
		nc = &prefixConn{Conn: nc, pending: pending}
	}
	c := &clientConn{s: s, nc: nc, accepted: time.Now(), resumed: true}
	if !s.track(c, true) {
		_ = nc.Close()
		return
	}
	go c.serve()
}

// unwrapConn returns the network connection under nc, which the relay may
// have wrapped to replay bytes, and the bytes still to be read from it:
// before, then those the wrapper had not replayed yet.
func unwrapConn(nc net.Conn, before []byte) (net.Conn, []byte) {
	if pc, ok := nc.(*prefixConn); ok {
		return pc.Conn, append(before, pc.pending...)
	}
	return nc, before
}

// eofBody records whether the request body was read to its end. Atomic:
// a transport may read the body from its own goroutine (a proxy's write
// loop), and takeBack looks once the handler has returned.
type eofBody struct {
	io.ReadCloser
	eof atomic.Bool
}

func (b *eofBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

// answerWriter records what the handler wrote: the final status, the
// framing its header declared when it was written, and the body's length.
type answerWriter struct {
	http.ResponseWriter
	bodiless bool // a HEAD request

	code     int
	length   int64 // the declared Content-Length; -1 for none
	written  int64
	unframed bool // Transfer-Encoding (net/http then ignores the length) or Connection: close
	failed   bool // a write failed (the client left, too long a body)
}

func (a *answerWriter) WriteHeader(code int) {
	if a.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		a.code = code
		a.noteHeader()
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *answerWriter) Write(p []byte) (int, error) {
	if a.code == 0 {
		a.code = http.StatusOK
		a.noteHeader()
	}
	n, err := a.ResponseWriter.Write(p)
	a.written += int64(n)
	if err != nil {
		a.failed = true
	}
	return n, err
}

// Flush keeps http.Flusher for handlers that assert it (ResponseController
// finds it through Unwrap as well).
func (a *answerWriter) Flush() {
	if f, ok := a.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (a *answerWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// noteHeader reads the framing off the header as net/http sends it (it
// takes its copy when the status is written).
func (a *answerWriter) noteHeader() {
	h := a.ResponseWriter.Header()
	a.length = -1
	if v := h.Values("Content-Length"); len(v) == 1 {
		if n, err := strconv.ParseInt(v[0], 10, 64); err == nil && n >= 0 {
			a.length = n
		}
	}
	a.unframed = len(h.Values("Transfer-Encoding")) > 0 || httpguts.HeaderValuesContainsToken(h.Values("Connection"), "close")
}

// complete reports an answer net/http has nothing left to write for and
// would keep the connection after.
func (a *answerWriter) complete() bool {
	if a.code < 200 || a.unframed || a.failed {
		return false
	}
	if a.bodiless || a.code == http.StatusNoContent || a.code == http.StatusNotModified {
		return true
	}
	return a.length >= 0 && a.written == a.length
}
