package gateway

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"

	"github.com/flint-dev/flint/internal/wire"
)

// The outgoing request, from the gateway to a replica's sidecar: its
// rewrite (route prefix stripped, X-Forwarded-*, the gateway token), the
// per-attempt copy pointed at one replica, and the proxy's copy buffers.
// Each is written to allocate little or nothing, as the request path
// must (see "Profiling the hot path" in docs/benchmarks.md).

const copyBufferSize = 32 << 10

// copyBuffers is the ReverseProxy's BufferPool. It pools array pointers, so
// that neither Get nor Put allocates (a []byte, or a pointer to one made
// in Put, would).
type copyBuffers struct{}

var copyBufferPool = sync.Pool{New: func() any { return new([copyBufferSize]byte) }}

func (copyBuffers) Get() []byte { return copyBufferPool.Get().(*[copyBufferSize]byte)[:] }

func (copyBuffers) Put(b []byte) {
	if len(b) == copyBufferSize {
		copyBufferPool.Put((*[copyBufferSize]byte)(b))
	}
}

// Shared header values. Header values are replaced, never modified in
// place, by everything the outgoing request passes through, so requests
// may share them.
var (
	forwardedProtoHTTP  = []string{"http"}
	forwardedProtoHTTPS = []string{"https"}
)

// rewriteOut turns the client's request into the agent's: the prefix is
// stripped, Host and trace headers are kept, X-Forwarded-* are set. The
// replica's address is filled in per attempt by the transport. token is
// the wire.HeaderGatewayToken value to send, nil for none.
func rewriteOut(pr *httputil.ProxyRequest, token []string) {
	c := callFrom(pr.In.Context())
	out := pr.Out
	out.URL.Scheme = "http"
	out.URL.Host = c.st.host
	out.URL.Path = c.route.Path
	out.URL.RawPath = c.route.RawPath
	out.URL.RawQuery = pr.In.URL.RawQuery // byte for byte, as the sidecar does (proxy/upstream.go rewrite)
	out.Host = pr.In.Host
	setForwarded(pr)
	if token != nil {
		out.Header[wire.HeaderGatewayToken] = token
	} else {
		delete(out.Header, wire.HeaderGatewayToken) // never pass on a client's guess
	}
	out.Header["X-Forwarded-Prefix"] = c.st.prefixHeader
}

// setForwarded is httputil.ProxyRequest.SetXForwarded with one allocation
// instead of three: the per-request values share one backing array (each
// slice capped so that appending to one cannot reach the other), and the
// protocol's is shared by all requests.
func setForwarded(pr *httputil.ProxyRequest) {
	h := pr.Out.Header
	vals := make([]string, 2)
	if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		vals[0] = ip
		h["X-Forwarded-For"] = vals[0:1:1]
	} else {
		delete(h, "X-Forwarded-For")
	}
	vals[1] = pr.In.Host
	h["X-Forwarded-Host"] = vals[1:2:2]
	if pr.In.TLS == nil {
		h["X-Forwarded-Proto"] = forwardedProtoHTTP
	} else {
		h["X-Forwarded-Proto"] = forwardedProtoHTTPS
	}
}

// attemptState is what one attempt at a replica needs, in one allocation:
// its copy of the request, pointed at the replica, and the body that gives
// the replica's slot back when the response ends.
type attemptState struct {
	req  http.Request
	url  url.URL
	body releasingBody
}

// newAttempt copies req for an attempt at addr.
func newAttempt(req *http.Request, addr string) *attemptState {
	a := &attemptState{req: *req, url: *req.URL}
	a.url.Host = addr
	a.req.URL = &a.url
	return a
}

// releaseWith makes res's body give the slot on b back when it ends.
func (a *attemptState) releaseWith(res *http.Response, st *agentState, b *backend) {
	a.body.ReadCloser, a.body.st, a.body.b = res.Body, st, b
	res.Body = &a.body
}
