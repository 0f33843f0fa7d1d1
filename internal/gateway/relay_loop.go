package gateway

import (
	"bufio"

	"github.com/flint-dev/flint/internal/h1relay"
)

// The event loops (-event-loops, h1relay.LoopHandler) serve the calls
// ServeRelay takes, without blocking: the same admission (admitCall) and
// end (endCall), the relaying in between the loop's own.

// AdmitLoop admits what ServeRelay would relay, to a replica a loop can
// connect to.
func (g *Gateway) AdmitLoop(ex *h1relay.Exchange) (string, *h1relay.Upstream, bool) {
	c, ok := g.admitCall(ex, true)
	if !ok {
		return "", nil, false
	}
	return c.b.Addr, &c.up, true
}

// WriteLoopHead writes the call's head as relayTo does.
func (g *Gateway) WriteLoopHead(w *bufio.Writer, ex *h1relay.Exchange) {
	c := ex.State.(*relayCall)
	g.writeRelayHead(w, ex, c.route, c.query, c.keyFrom, c.st)
}

// FinishLoop ends a call AdmitLoop admitted, as ServeRelay does.
func (g *Gateway) FinishLoop(ex *h1relay.Exchange, res h1relay.Response, err error) bool {
	return g.endCall(ex, ex.State.(*relayCall), res, err)
}
