// Package gateway routes invocations /v1/agents/{namespace}/{name}/… to an
// agent's ready replicas: it balances across them, holds requests while an
// agent starts from zero or every replica is full (the activator), retries
// what no replica has seen, and reports held and refused requests as demand.
package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flint-dev/flint/internal/bodyrate"
	"github.com/flint-dev/flint/internal/forward"
	"github.com/flint-dev/flint/internal/mcp/session"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/telemetry"
	"github.com/flint-dev/flint/internal/upgrade"
)

// Scaler is told the instant a request is held for an agent with no ready
// replica, so scale-from-zero does not wait for the next autoscaler tick.
type Scaler interface {
	Poke(key platform.AgentKey)
}

// Gateway is the invocation router. It is an http.Handler.
type Gateway struct {
	cfg      Config
	platform platform.Platform
	scaler   Scaler
	log      *slog.Logger
	metrics  *metrics
	proxy    *httputil.ReverseProxy
	base     *forward.Transport
	tls      *upstreamTLS // sidecars that serve TLS (upstream_tls.go)
	admin    *http.ServeMux
	auth     *authenticator // nil when authentication is off
	agents   sync.Map       // platform.AgentKey -> *agentState
	obs      observability  // tracing, dashboard, scale decisions (observe.go)
	mcp      *mcpState      // MCP session keys and open session streams (mcp_protocol.go)
	draining atomic.Bool    // set by Drain (drain.go)
	hosts    *hostGuard     // DNS-rebinding protection on loopback (hostguard.go)
	token    *sidecarToken  // the gateway token sent to sidecars (sidecar_token.go)
	stop     context.CancelFunc

	adminSeparate atomic.Bool // the admin endpoints have a listener of their own (admin_port.go)
}

// New builds a gateway over p. scaler may be nil; reg may be nil to skip
// metrics registration.
func New(cfg Config, p platform.Platform, scaler Scaler, log *slog.Logger, reg prometheus.Registerer) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, platform: p, scaler: scaler, log: log, metrics: newMetrics(reg)}
	ctx, stop := context.WithCancel(context.Background())
	auth, err := newAuthenticator(ctx, cfg.Auth, log)
	if err != nil {
		stop()
		return nil, err
	}
	g.auth, g.stop = auth, stop
	if g.hosts, err = newHostGuard(cfg, reg); err != nil {
		stop()
		return nil, err
	}
	if g.mcp, err = newMCPState(cfg.MCP, log); err != nil {
		stop()
		return nil, err
	}
	go g.mcp.keys.Watch(ctx, session.WatchInterval, log) // a rotated -session-key-file applies without a restart
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	if g.tls, err = newUpstreamTLS(dialer, cfg.UpstreamCAFile); err != nil {
		stop()
		return nil, err
	}
	std := &http.Transport{
		DialContext:           dialer.DialContext,
		DialTLSContext:        g.tls.dialTLS,
		MaxIdleConns:          10000,
		MaxIdleConnsPerHost:   1000,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
	}
	// Plain-HTTP sidecars are reached through forward.Transport (the
	// request's work in the handler's goroutine, issue 19); TLS sidecars,
	// upgrades and Expect: 100-continue through net/http's.
	g.base = &forward.Transport{
		Dial:           dialer.DialContext,
		Fallback:       std,
		MaxIdlePerHost: std.MaxIdleConnsPerHost,
		IdleTimeout:    std.IdleConnTimeout,
	}
	g.initObservability(reg) // before the proxy: attempts get spans when tracing is on
	// The gateway token sent to sidecars, followed (sidecar_token.go).
	token, err := newSidecarToken(cfg, log)
	if err != nil {
		stop()
		return nil, err
	}
	g.token = token
	g.proxy = &httputil.ReverseProxy{
		Rewrite:      func(pr *httputil.ProxyRequest) { rewriteOut(pr, token.header()) }, // outgoing.go
		Transport:    &balancingTransport{g: g, base: g.obs.tracing.Transport(g.base, telemetry.SpanGatewayAttempt)},
		BufferPool:   copyBuffers{},
		ErrorHandler: g.proxyErrorHandler, // MCP errors in JSON-RPC shape, the rest via errorHandler
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),

		// Protocol-aware responses: MCP session ids, A2A cards, event streams (mcp_protocol.go).
		ModifyResponse: g.modifyResponse,
	}
	g.admin = g.adminMux(reg)
	return g, nil
}

// ServeHTTP routes one invocation.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	relayed := takeRelayNote(r) // relay.go: the relay's attempt at this request, if it made one
	g.closeWhenDraining(w, r)
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		// RFC 9112 §6.1: after a request with both Content-Length and
		// Transfer-Encoding (a request-smuggling shape) the server MUST
		// close the connection. Go's server drops the Content-Length
		// before any handler runs, so that request cannot be told from a
		// plain chunked one: every chunked HTTP/1 request closes its
		// connection (a streamed upload costs one new connection).
		w.Header()["Connection"] = connectionClose
	}
	route, err := ParseRoute(r.URL.EscapedPath())
	if errors.Is(err, errNotAgentRoute) {
		g.serveNonAgent(w, r) // admin_port.go
		return
	}
	if err != nil {
		errBadRoute(err).write(w)
		return
	}
	if strings.EqualFold(upgrade.Protocol(r.Header), "h2c") {
		// Served over HTTP/1.1 instead (Server says why); an agent that
		// took the upgrade would turn the request into a tunnel.
		r.Header.Del("Upgrade")
		r.Header.Del("Http2-Settings")
	}
	if upgrade.Invalid(r.Header) {
		(&gatewayError{status: http.StatusBadRequest, reason: "BadUpgrade",
			message: "the Upgrade header names no valid protocol"}).write(w)
		return
	}
	agent, ok := g.platform.Agent(route.Agent)
	// Authenticate before answering 404, so callers without credentials
	// cannot probe which agents exist. A public agent skips it, but never
	// sees a Flint API key either.
	if ok && agent.Spec.Public {
		g.stripAPIKeys(r.Header)
	} else if !g.authenticated(w, r) {
		return
	}
	if !ok {
		if g.syncing() { // it may exist: the gateway listens before its informers sync
			errStarting(g.cfg.RetryAfter).write(w)
			return
		}
		errUnknownAgent(route.Agent).write(w)
		return
	}
	// The proxied copy of the request gets the wrapped body; the server's
	// own Request keeps its body, which it inspects after the handler to
	// decide whether the connection can carry another request.
	body, slowBody := bodyrate.Wrap(w, r.Body, g.cfg.BodyRate) // a trickled body gets 408 (errors.go)
	if limit := g.cfg.MaxBodyBytes; limit > 0 && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > limit {
			errBodyTooLarge(limit).write(w)
			return
		}
		body = http.MaxBytesReader(w, body, limit)
	}
	st := g.state(route.Agent)
	start := time.Now()
	st.requests.Add(1)
	st.lastRequest.Store(start.UnixNano())
	g.platform.RecordInvocation(route.Agent, start)

	timeout := agent.Spec.RequestTimeout()
	ctx, cancel := requestContext(r, agent, timeout) // MCP session streams are exempt (mcp_protocol.go)
	defer cancel()
	c := &call{Context: ctx, key: route.Agent, agent: agent, st: st, route: route, agentTimeout: timeout, slowBody: slowBody, relayed: relayed}
	if err := g.prepareProtocol(r, c); err != nil { // MCP session pinning, A2A cards
		g.proxyErrorHandler(w, r, err)
		return
	}
	c.rec.ResponseWriter = w
	if r.ProtoMajor == 1 && r.ContentLength != 0 {
		// As in the sidecar (proxy/handler.go): a replica that answers and
		// streams before the body's end is read must not lose its
		// connection when the server closes the body as headers go out.
		_ = http.NewResponseController(w).EnableFullDuplex()
		// And as there, the body must be closed before the handler returns
		// (golang/go#68560; proxy.closeBody says why).
		defer r.Body.Close()
	}
	out := r.WithContext(c) // the call is the context: callFrom finds it
	out.Body = body
	g.proxy.ServeHTTP(&c.rec, out)
	st.metrics.countCode(c.rec.status())
	st.metrics.duration.Observe(time.Since(start).Seconds())
}

func (g *Gateway) state(key platform.AgentKey) *agentState {
	if st, ok := g.agents.Load(key); ok {
		return st.(*agentState)
	}
	st, _ := g.agents.LoadOrStore(key, newAgentState(key, g.metrics.forAgent(key)))
	return st.(*agentState)
}

// Server returns an http.Server for the gateway with limits that protect
// it from slow or oversized clients but never cut a long stream.
func (g *Gateway) Server() *http.Server {
	srv := &http.Server{
		Addr:              g.cfg.Addr,
		Handler:           g.Handler(), // g itself unless tracing is on
		ReadHeaderTimeout: g.cfg.ReadHeaderTimeout,
		IdleTimeout:       g.cfg.IdleTimeout,
		MaxHeaderBytes:    g.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
		// HTTP/2 without TLS with prior knowledge (gRPC clients, curl
		// --http2-prior-knowledge), beside HTTP/1. The Upgrade: h2c dance
		// (RFC 7540 §3.2, deprecated by RFC 9113) is ignored as RFC 7230
		// allows: the request is answered over HTTP/1.1 (ServeHTTP).
		Protocols: new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	srv.ConnContext = relayNoteContext // relay.go
	// MCP session streams would hold Shutdown until its deadline; ended
	// cleanly, their clients reconnect and keep their sessions.
	srv.RegisterOnShutdown(g.mcp.streams.endAll)
	return srv
}

// Close releases idle connections to replicas and stops background work.
func (g *Gateway) Close() {
	g.stop()
	g.base.CloseIdleConnections()
}

// statusRecorder remembers the response code for metrics; Unwrap lets
// ReverseProxy flush streams and hijack upgraded connections through it.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 && code >= 200 || code == http.StatusSwitchingProtocols {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}
