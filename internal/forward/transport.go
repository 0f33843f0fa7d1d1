// Package forward is an HTTP/1.1 client transport for Flint's own hops
// (gateway → sidecar, sidecar → agent) that does each request's work in
// the caller's goroutine.
//
// net/http's Transport hands every request over between three goroutines
// (the caller, the connection's write loop and its read loop); on a
// loopback hop that costs more CPU than the proxying itself (issue 19).
// Here the caller takes a pooled persistent connection, writes the request
// line and headers through the connection's bufio.Writer, reads the answer
// with http.ReadResponse from its bufio.Reader, and the connection goes
// back to the pool only when its response body was read to the end and
// the request body was written whole. A goroutine is started only to
// stream a request body, so that the upstream may answer while the body is
// still arriving (full duplex, early answers).
//
// What it does not carry goes to Fallback unchanged: TLS upstreams,
// protocol upgrades (WebSocket), "Expect: 100-continue" and requests whose
// framing it does not write (anything other than HTTP/1.x to an http URL).
// httputil.ReverseProxy stays in front of it: hop-by-hop headers,
// X-Forwarded-*, trailers, 1xx forwarding (through httptrace) and the
// flush policy are its, as before.
package forward

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// Transport is an http.RoundTripper for plain HTTP/1.1 upstreams. Its zero
// value is not usable: set Dial and Fallback.
type Transport struct {
	// Dial opens a connection to an upstream's host:port.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Fallback carries the requests this transport does not (see the
	// package comment).
	Fallback http.RoundTripper
	// MaxIdlePerHost bounds the idle connections kept per upstream.
	MaxIdlePerHost int
	// IdleTimeout closes connections idle for longer (0: never).
	IdleTimeout time.Duration
	// MaxResponseHeaderBytes bounds a response's header section (each 1xx
	// and the final response on its own); 0 means net/http's default, 10 MiB.
	MaxResponseHeaderBytes int64
	// ReadBufferSize and WriteBufferSize size each connection's buffers;
	// 0 means 4 KiB.
	ReadBufferSize, WriteBufferSize int

	pools sync.Map // host:port → *pool
}

const defaultMaxHeaderBytes = 10 << 20

// RoundTrip sends req and returns the upstream's response, whose body must
// be read to its end or closed.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !carries(req) {
		return t.Fallback.RoundTrip(req)
	}
	if err := validate(req); err != nil {
		closeRequestBody(req)
		return nil, err
	}
	p := t.pool(req.URL.Host)
	for {
		c, err := p.get(req.Context())
		if err != nil {
			closeRequestBody(req)
			return nil, err
		}
		res, err := c.roundTrip(req)
		if err == nil {
			return res, nil
		}
		// A kept-alive connection the upstream closed before reading this
		// request fails before any byte of an answer arrives; a request
		// that is safe to send twice goes again on the next connection, as
		// net/http does: the pool may hold other connections the upstream
		// closed (a draining sidecar closes every idle one), and it ends
		// once a fresh connection fails.
		if c.reused && errors.Is(err, errNoResponse) && replayable(req) && req.Context().Err() == nil {
			continue
		}
		closeRequestBody(req)
		return nil, err
	}
}

// carries reports whether this transport writes req itself.
func carries(req *http.Request) bool {
	if req.URL == nil || req.URL.Scheme != "http" || req.URL.Host == "" {
		return false
	}
	if _, ok := req.Header["Upgrade"]; ok {
		return false // the fallback hands ReverseProxy a writable 101 body
	}
	if v, ok := req.Header["Expect"]; ok && len(v) > 0 {
		return false // the fallback waits for 100 Continue before the body
	}
	return true
}

// replayable is net/http's rule: a request without a body whose method
// makes sending it twice harmless, or one the client marked idempotent.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, k1 := req.Header["Idempotency-Key"]
	_, k2 := req.Header["X-Idempotency-Key"]
	return k1 || k2
}

func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

func (t *Transport) pool(addr string) *pool {
	if p, ok := t.pools.Load(addr); ok {
		return p.(*pool)
	}
	p, _ := t.pools.LoadOrStore(addr, &pool{t: t, addr: addr})
	return p.(*pool)
}

// CloseIdleConnections closes every idle connection, the fallback's too.
func (t *Transport) CloseIdleConnections() {
	t.pools.Range(func(_, p any) bool {
		p.(*pool).closeIdle()
		return true
	})
	if c, ok := t.Fallback.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
