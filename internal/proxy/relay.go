package proxy

import (
	"bufio"
	"errors"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"unsafe"

	"github.com/flint-dev/flint/internal/forward"
	"github.com/flint-dev/flint/internal/h1relay"
	"github.com/flint-dev/flint/internal/wire"
)

// newRelay serves the serving port's plain HTTP/1.1 requests with
// internal/h1relay, and every other connection with the net/http server
// (issue 19). It is off with TLS on the serving port, tracing, or
// -upstream-h2c, where net/http does all the work.
func (s *Sidecar) newRelay(tracing bool) *h1relay.Server {
	ft, ok := s.transport.(*forward.Transport)
	if !ok || tracing || s.tls != nil {
		return nil
	}
	s.raw = ft
	s.relayUp = h1relay.Upstream{
		DropResponse: isFlintHeader[[]byte],
		Timeout:      s.cfg.RequestTimeout,
	}
	return &h1relay.Server{
		Handler:           s,
		Fallback:          s.servingSrv,
		IdleTimeout:       servingIdleTimeout,
		ReadHeaderTimeout: readHeaderTimeout,
		Loops:             s.relayLoops(),
		OnAccept:          s.metrics.conns.plain.Inc,
	}
}

// relayLoops is -event-loops, or 0 when the agent's address is a name: a
// loop connects without resolving.
func (s *Sidecar) relayLoops() int {
	if _, err := netip.ParseAddrPort(s.cfg.UpstreamAddr); err != nil && s.cfg.EventLoops > 0 {
		s.log.Info("event loops off: -upstream is not an IP address and port", "upstream", s.cfg.UpstreamAddr)
		return 0
	}
	return s.cfg.EventLoops
}

// AdmitLoop is ServeRelay's admission for the event loops: a request that
// would wait (a full breaker, an agent not ready), that is refused or that
// opens an event stream goes to ServeRelay, which answers or waits.
func (s *Sidecar) AdmitLoop(ex *h1relay.Exchange) (string, *h1relay.Upstream, bool) {
	h := &ex.Head
	if isStreamHead(h) || s.aborted() || !s.viaGateway(h) {
		return "", nil, false
	}
	start := s.acc.now()
	if !s.admitNow(start) {
		return "", nil, false
	}
	if s.draining.Load() {
		ex.Close()
	}
	ex.Admitted = start
	s.requests.Add(1)
	return s.cfg.UpstreamAddr, &s.relayUp, true
}

// WriteLoopHead writes the request head as relay does.
func (s *Sidecar) WriteLoopHead(w *bufio.Writer, ex *h1relay.Exchange) { writeRelayHead(w, ex) }

// FinishLoop ends an exchange AdmitLoop admitted.
func (s *Sidecar) FinishLoop(ex *h1relay.Exchange, res h1relay.Response, err error) bool {
	s.endRelayed(ex, res, err)
	return true
}

// ServeRelay is ServeHTTP's admission for a request the relay took,
// waiting as ServeHTTP does (a full breaker, an agent not yet ready) with
// the relay's watch for a client that leaves meanwhile. Event streams
// (which the drain tracks) go to ServeHTTP instead.
func (s *Sidecar) ServeRelay(ex *h1relay.Exchange) bool {
	h := &ex.Head
	if isStreamHead(h) {
		return false
	}
	if !s.viaGateway(h) {
		rw := ex.ResponseWriter()
		writeError(&rw, http.StatusForbidden, "bypass", "requests must come through the Flint gateway", nil)
		rw.Send()
		return true
	}
	start := s.acc.now()
	if s.draining.Load() {
		ex.Close()
	}
	switch s.admit(start) {
	case queueFull:
		rw := ex.ResponseWriter()
		s.reject(&rw, start, wire.RejectCapacity)
		rw.Send()
		return true
	case mustWait:
		ctx, stopWatch := ex.WatchClient(s.reqCtx)
		reason := s.wait(ctx, start)
		stopWatch()
		if reason != "" {
			rw := ex.ResponseWriter()
			s.reject(&rw, start, reason)
			rw.Send()
			return true
		}
	}
	if s.aborted() {
		s.finishAdmitted()
		rw := ex.ResponseWriter()
		s.reject(&rw, start, wire.RejectShutdown)
		rw.Send()
		return true
	}
	ex.Admitted = start
	s.requests.Add(1)
	res, err := s.relay(ex)
	s.endRelayed(ex, res, err)
	return true
}

// viaGateway reports whether the request carries the gateway's token (or
// none is required).
func (s *Sidecar) viaGateway(h *h1relay.Head) bool {
	token, _ := h.Get(wire.HeaderGatewayToken)
	return s.gatewayToken.accepts(unsafe.String(unsafe.SliceData(token), len(token)))
}

// relay sends the request to the agent and relays the answer. A
// replayable request that meets a pooled connection the agent had closed
// goes again on the next one, as forward.Transport does.
func (s *Sidecar) relay(ex *h1relay.Exchange) (h1relay.Response, error) {
	for {
		up, err := s.raw.Raw(s.reqCtx, s.cfg.UpstreamAddr)
		if err != nil {
			return h1relay.Response{}, err
		}
		writeRelayHead(up.Writer(), ex)
		res, err := ex.Relay(up, &s.relayUp)
		if !ex.Resend(res, err) {
			return res, err
		}
	}
}

// endRelayed ends an admitted exchange, on the loops or not: the error
// answer when the agent failed before answering, the slot given back, the
// metrics.
func (s *Sidecar) endRelayed(ex *h1relay.Exchange, res h1relay.Response, err error) {
	code := res.Status
	switch {
	case err == nil:
	case res.Started:
		s.log.Debug("upstream error after the response started", "err", err)
	default:
		code = s.relayError(ex, err)
	}
	end := s.finishAdmitted()
	s.metrics.observe(code, end-ex.Admitted)
}

// writeRelayHead is rewrite's request head: the target and every
// end-to-end header as the client sent them, but the gateway token; this
// hop appended to X-Forwarded-For; X-Forwarded-Proto defaulted to http.
func writeRelayHead(w *bufio.Writer, ex *h1relay.Exchange) {
	ex.WriteRequestLine(w, ex.Head.Target)
	ex.WriteFields(w, isGatewayTokenField)
	ex.WriteForwardedFor(w, true)
	if _, ok := ex.Head.Get("X-Forwarded-Proto"); !ok {
		h1relay.WriteField(w, "X-Forwarded-Proto", protoHTTPBytes)
	}
	_, _ = w.WriteString("\r\n")
}

var protoHTTPBytes = []byte("http")

// relayError answers as upstreamError does when the agent could not be
// reached or did not answer.
func (s *Sidecar) relayError(ex *h1relay.Exchange, err error) int {
	rw := ex.ResponseWriter()
	switch {
	case errors.Is(err, h1relay.ErrClientGone):
		ex.Close()
		return statusClientClosed
	case errors.Is(err, os.ErrDeadlineExceeded) && s.aborted():
		s.agentFailed(&rw, failShutdown, err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.agentFailed(&rw, failTimeout, err)
	default:
		s.agentFailed(&rw, failConnection, err)
	}
	rw.Send()
	return rw.Status()
}

// isStreamHead is isStreamRequest for a head the relay parsed (it has no
// Upgrade header).
func isStreamHead(h *h1relay.Head) bool {
	if string(h.Method) != http.MethodGet {
		return false
	}
	for _, f := range h.Fields {
		if len(f.Name) == len("Accept") && strings.EqualFold(string(f.Name), "Accept") && strings.Contains(string(f.Value), "text/event-stream") {
			return true
		}
	}
	return false
}

func isGatewayTokenField(f h1relay.Field) bool {
	return len(f.Name) == len(wire.HeaderGatewayToken) && strings.EqualFold(string(f.Name), wire.HeaderGatewayToken)
}
