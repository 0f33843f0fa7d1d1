package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/h1relay"
	"github.com/flint-dev/flint/internal/wire"
)

// ServingServer serves the public port: the plain HTTP/1.1 call of a plain
// agent that a replica can take at once is relayed byte for byte
// (internal/h1relay, issue 19); every other request, and the connection it
// came on, is Server's. With tracing on, Server serves everything.
func (g *Gateway) ServingServer() h1relay.PortServer { return g.servingServer(g.Server()) }

func (g *Gateway) servingServer(srv *http.Server) h1relay.PortServer {
	if g.obs.tracing != nil {
		return srv
	}
	return &h1relay.Server{
		Handler:           g,
		Fallback:          srv,
		IdleTimeout:       g.cfg.IdleTimeout,
		ReadHeaderTimeout: g.cfg.ReadHeaderTimeout,
		MaxHeadBytes:      g.cfg.MaxHeaderBytes,
		Loops:             g.cfg.EventLoops,
	}
}

// ServeRelay takes a request only where ServeHTTP would send it straight
// to a replica: a known agent speaking plain HTTP, not public, an API key
// that is valid, a body within the limit, a plain-HTTP replica with room.
// Everything else — errors to explain, holds, MCP and A2A, JWTs, TLS
// sidecars — is ServeHTTP's, as is a call whose replica refused it or
// could not be reached (ServeHTTP retries and holds).
func (g *Gateway) ServeRelay(ex *h1relay.Exchange) bool {
	c, ok := g.admitCall(ex, false)
	if !ok {
		return false
	}
	res, err := g.relayTo(ex, c)
	return g.endCall(ex, c, res, err)
}

// relayCall is a call the relay took, from its admission to its end; each
// client connection keeps one (Exchange.State) for its calls.
type relayCall struct {
	b       *backend
	st      *agentState
	route   Route
	query   []byte // in the request's head, which outlives the call
	keyFrom string
	start   time.Time
	up      h1relay.Upstream
}

// admitCall takes what ServeRelay and AdmitLoop relay: a call relayable
// takes, to a plain-HTTP replica with room, whose address is an IP address
// and port when the call is for a loop (a loop does not resolve names).
// It counts the call as ServeHTTP would.
func (g *Gateway) admitCall(ex *h1relay.Exchange, onLoop bool) (*relayCall, bool) {
	route, query, agent, keyFrom, ok := g.relayable(&ex.Head)
	if !ok {
		return nil, false
	}
	st := g.state(route.Agent)
	b := st.backends(g.platform).pick(int64(agent.Spec.Concurrency), nil)
	if b == nil || b.TLSServerName != "" {
		return nil, false
	}
	if _, err := netip.ParseAddrPort(b.Addr); onLoop && err != nil {
		return nil, false
	}
	c, _ := ex.State.(*relayCall)
	if c == nil {
		c = &relayCall{}
		ex.State = c
	}
	if g.draining.Load() {
		ex.Close()
	}
	*c = relayCall{b: b, st: st, route: route, query: query, keyFrom: keyFrom, start: time.Now(),
		up: h1relay.Upstream{DropResponse: isRejectedHeader, Refused: isRejection, Timeout: agent.Spec.RequestTimeout(),
			DialTimeout: g.cfg.DialTimeout}}
	st.requests.Add(1)
	st.lastRequest.Store(c.start.UnixNano())
	g.platform.RecordInvocation(route.Agent, c.start)
	b.inFlight.Add(1)
	st.active.Add(1)
	return c, true
}

// endCall ends an admitted call with its outcome: a replica that refused
// it or could not be reached hands it, with a note, to ServeHTTP (false:
// nothing reached the client), which retries and holds; any other failure
// before the answer started is answered here.
func (g *Gateway) endCall(ex *h1relay.Exchange, c *relayCall, res h1relay.Response, err error) bool {
	code := res.Status
	var note *relayNote
	switch {
	case err == nil:
	case errors.Is(err, h1relay.ErrRefused):
		g.backOff(c.b)
		note = &relayNote{backend: c.b, refusal: res.Refusal}
	case !res.Started && isConnectFailure(err):
		g.backOff(c.b)
		note = &relayNote{backend: c.b, err: err}
	case res.Started:
		g.log.Debug("upstream error after the response started", "agent", c.route.Agent, "error", err)
	default:
		code = g.relayError(ex, c.route, &c.up, err)
	}
	c.st.active.Add(-1)
	c.st.release(c.b)
	if note != nil {
		c.st.requests.Add(^uint64(0)) // ServeHTTP counts it
		ex.HandOff(note)
		return false
	}
	c.st.metrics.countCode(code)
	c.st.metrics.duration.Observe(time.Since(c.start).Seconds())
	return true
}

// relayable checks what ServeRelay and AdmitLoop take before a replica
// is picked: the Host and Origin, the route to a known plain-HTTP agent
// that is not public, an API key that is valid, a body within the limit.
func (g *Gateway) relayable(h *h1relay.Head) (route Route, query []byte, agent *v1alpha1.Agent, keyFrom string, ok bool) {
	if g.hosts != nil && g.hosts.policy.On() {
		origin, _ := h.Get("Origin")
		if _, err := g.hosts.policy.CheckHost(bytesString(h.Host), bytesString(origin)); err != nil {
			return route, nil, agent, "", false
		}
	}
	path := h.Target
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i:]
	}
	route, err := ParseRoute(string(path)) // a copy: the route's strings outlive the read buffer
	if err != nil {
		return route, nil, agent, "", false
	}
	agent, ok = g.platform.Agent(route.Agent)
	if !ok || agent.Spec.Public || (agent.Spec.Protocol != "" && agent.Spec.Protocol != v1alpha1.ProtocolHTTP) {
		return route, nil, agent, "", false
	}
	if keyFrom, ok = g.relayAPIKey(h); !ok {
		return route, nil, agent, "", false
	}
	if limit := g.cfg.MaxBodyBytes; limit > 0 && h.ContentLength > limit {
		return route, nil, agent, "", false
	}
	return route, query, agent, keyFrom, true
}

// relayNote is a call the relay sent to a replica that refused it or could
// not be reached, handed to ServeHTTP with its connection: the balancing
// transport takes it as its first attempt's outcome, so retry budgets,
// backoffs and holds count it as ServeHTTP's own attempt.
type relayNote struct {
	backend *backend
	refusal []byte // the sidecar's refusal as it came
	err     error  // or the connection failure
	taken   atomic.Bool
}

type relayNoteKey struct{}

// relayNoteContext is the fallback server's ConnContext: a connection the
// relay handed over carries its note to the first request served on it.
func relayNoteContext(ctx context.Context, c net.Conn) context.Context {
	if n, ok := h1relay.Note(c).(*relayNote); ok {
		return context.WithValue(ctx, relayNoteKey{}, n)
	}
	return ctx
}

// takeRelayNote returns the note of the handed-off request r, once: later
// requests on the connection are ServeHTTP's from the start.
func takeRelayNote(r *http.Request) *relayNote {
	n, _ := r.Context().Value(relayNoteKey{}).(*relayNote)
	if n == nil || !n.taken.CompareAndSwap(false, true) {
		return nil
	}
	return n
}

// outcome is the relayed attempt as attempt would have returned it.
func (n *relayNote) outcome(req *http.Request) (res *http.Response, retry string, err error) {
	if n.refusal == nil {
		if isConnectFailure(n.err) {
			return nil, retryConnect, n.err
		}
		return nil, "", n.err
	}
	res, err = http.ReadResponse(bufio.NewReader(bytes.NewReader(n.refusal)), req)
	if err != nil {
		return nil, "", err
	}
	return res, rejection(res), nil
}

// relayTo makes the call on its replica, again on a fresh connection when
// a pooled one the sidecar had closed took it; an error connecting is the
// outcome as it is.
func (g *Gateway) relayTo(ex *h1relay.Exchange, c *relayCall) (h1relay.Response, error) {
	for {
		up, err := g.base.Raw(context.Background(), c.b.Addr)
		if err != nil {
			return h1relay.Response{}, err
		}
		g.writeRelayHead(up.Writer(), ex, c.route, c.query, c.keyFrom, c.st)
		res, err := ex.Relay(up, &c.up)
		if !ex.Resend(res, err) {
			return res, err
		}
	}
}

// relayError answers a call whose replica failed before answering.
func (g *Gateway) relayError(ex *h1relay.Exchange, route Route, u *h1relay.Upstream, err error) int {
	rw := ex.ResponseWriter()
	switch {
	case errors.Is(err, h1relay.ErrClientGone):
		rw.WriteHeader(h1relay.StatusClientClosed)
	case errors.Is(err, os.ErrDeadlineExceeded):
		errRequestTimeout(route.Agent, u.Timeout).write(&rw)
	default:
		g.log.Warn("upstream error", "agent", route.Agent, "error", err)
		errUpstream(route.Agent, err).write(&rw)
	}
	rw.Send()
	return rw.Status()
}

// writeRelayHead is rewriteOut's request: the route's path and the query
// byte for byte, Host and the end-to-end headers kept, the client's
// forwarding headers replaced by this hop's, the API key the call was
// authenticated with removed, the gateway token set.
func (g *Gateway) writeRelayHead(w *bufio.Writer, ex *h1relay.Exchange, route Route, query []byte, keyFrom string, st *agentState) {
	target := route.RawPath
	if target == "" {
		target = route.Path
	}
	_, _ = w.Write(ex.Head.Method)
	_ = w.WriteByte(' ')
	_, _ = w.WriteString(target)
	_, _ = w.Write(query)
	_, _ = w.WriteString(" HTTP/1.1\r\n")
	for _, f := range ex.Head.Fields {
		if !h1relay.IsHopByHop(f.Name) && !replacedHeader(f.Name) && !g.isCredential(f, keyFrom) {
			f.Write(w)
		}
	}
	ex.WriteForwardedFor(w, false)
	h1relay.WriteField(w, "X-Forwarded-Host", ex.Head.Host)
	_, _ = w.WriteString("X-Forwarded-Proto: http\r\nX-Forwarded-Prefix: ")
	_, _ = w.WriteString(st.prefixHeader[0])
	_, _ = w.WriteString("\r\n")
	if token := g.token.header(); token != nil {
		_, _ = w.WriteString(wire.HeaderGatewayToken)
		_, _ = w.WriteString(": ")
		_, _ = w.WriteString(token[0])
		_, _ = w.WriteString("\r\n")
	}
	_, _ = w.WriteString("\r\n")
}

// replacedHeader names the client's headers this hop sets itself.
func replacedHeader(name []byte) bool {
	for _, h := range [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Prefix", wire.HeaderGatewayToken} {
		if h1relay.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// relayAPIKey authenticates as authenticate does, for API keys only: it
// returns the header the key came in. A JWT, or no valid credential, is
// ServeHTTP's to check or refuse.
func (g *Gateway) relayAPIKey(h *h1relay.Head) (string, bool) {
	if g.auth == nil {
		return "", true
	}
	apiKey, _ := h.Get("X-API-Key")
	authorization, _ := h.Get("Authorization")
	cred, from := credential(bytesString(apiKey), bytesString(authorization))
	if cred == "" || !g.auth.isAPIKey(cred) {
		return "", false
	}
	return from, true
}

// isCredential reports a header line that carries one of the gateway's
// API keys, or is the header the call's key came in (authenticate drops
// it whole): no agent sees a Flint credential.
func (g *Gateway) isCredential(f h1relay.Field, keyFrom string) bool {
	if g.auth == nil {
		return false
	}
	for _, name := range [...]string{"X-Api-Key", "Authorization"} {
		if h1relay.EqualFold(f.Name, name) {
			return h1relay.EqualFold(f.Name, keyFrom) || g.auth.carriesAPIKey(name, bytesString(f.Value))
		}
	}
	return false
}

// isRejection is rejection for a relayed answer: the sidecar's word that
// the agent never saw the call.
func isRejection(status int, fields []h1relay.Field) bool {
	var reason []byte
	n := 0
	for _, f := range fields {
		if isRejectedHeader(f.Name) {
			reason = f.Value
			n++
		}
	}
	if n != 1 {
		return false
	}
	want, ok := sidecarRejections[bytesString(reason)]
	return ok && status == want
}

func isRejectedHeader(name []byte) bool { return h1relay.EqualFold(name, wire.HeaderRejected) }

// bytesString views b as a string for a lookup or comparison that does
// not keep it.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
