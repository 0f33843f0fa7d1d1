package gateway

import (
	"bufio"
	"errors"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/flint-dev/flint/internal/h1relay"
)

// The event loops (-event-loops, h1relay.LoopHandler) serve the calls
// ServeRelay takes, without blocking: AdmitLoop is ServeRelay up to the
// pick of a replica, FinishLoop is relayTo's end. A replica that refused
// the call or could not be reached sends it to ServeHTTP with its note,
// as ServeRelay does.

// loopCall is what a call on the loops keeps between AdmitLoop and
// FinishLoop; each client connection keeps one (Exchange.State).
type loopCall struct {
	b       *backend
	st      *agentState
	route   Route
	query   []byte // in the request's head, which outlives the call
	keyFrom string
	start   time.Time
	up      h1relay.Upstream
}

// AdmitLoop admits what ServeRelay would relay, to a replica whose address
// is an IP address and port (a loop does not resolve names).
func (g *Gateway) AdmitLoop(ex *h1relay.Exchange) (string, *h1relay.Upstream, bool) {
	c, _ := ex.State.(*loopCall)
	if c == nil {
		c = &loopCall{}
		ex.State = c
	}
	route, query, agent, keyFrom, ok := g.relayable(&ex.Head)
	if !ok {
		return "", nil, false
	}
	st := g.state(route.Agent)
	b := st.backends(g.platform).pick(int64(agent.Spec.Concurrency), nil)
	if b == nil || b.TLSServerName != "" {
		return "", nil, false
	}
	if _, err := netip.ParseAddrPort(b.Addr); err != nil {
		return "", nil, false
	}
	if g.draining.Load() {
		ex.Close()
	}
	*c = loopCall{b: b, st: st, route: route, query: query, keyFrom: keyFrom, start: time.Now(),
		up: h1relay.Upstream{DropResponse: isRejectedHeader, Refused: isRejection, Timeout: agent.Spec.RequestTimeout(),
			DialTimeout: g.cfg.DialTimeout}}
	st.requests.Add(1)
	st.lastRequest.Store(c.start.UnixNano())
	g.platform.RecordInvocation(route.Agent, c.start)
	b.inFlight.Add(1)
	st.active.Add(1)
	return b.Addr, &c.up, true
}

// WriteLoopHead writes the call's head as relayTo does.
func (g *Gateway) WriteLoopHead(w *bufio.Writer, ex *h1relay.Exchange) {
	c := ex.State.(*loopCall)
	g.writeRelayHead(w, ex, c.route, c.query, c.keyFrom, c.st)
}

// FinishLoop ends a call AdmitLoop admitted, as relayTo and ServeRelay do.
func (g *Gateway) FinishLoop(ex *h1relay.Exchange, res h1relay.Response, err error) bool {
	c := ex.State.(*loopCall)
	code := res.Status
	var note *relayNote
	switch {
	case err == nil:
	case errors.Is(err, h1relay.ErrRefused):
		g.backOff(c.b)
		note = &relayNote{backend: c.b, refusal: res.Refusal}
	case isDial(err):
		if isConnectFailure(err) {
			g.backOff(c.b)
		}
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

// isDial reports a failure to connect, which the loops report as net.Dial does.
func isDial(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
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
