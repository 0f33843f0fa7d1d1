package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/flint-dev/flint/internal/mcp/session"
	"github.com/flint-dev/flint/internal/platform"
)

// retryPinnedFull is attempt's verdict for a sidecar's capacity refusal
// (its X-Flint-Rejected reason "capacity").
const retryPinnedFull = "rejected_capacity"

// roundTripPinned sends a request of an MCP session to the one replica
// that holds the session, whether ready or draining. It never balances: a
// session exists in one replica's memory only. When that replica is gone,
// or no longer accepts connections, the session is gone too and the client
// gets 404 so it starts a new one. A replica that is full is waited for,
// within the capacity hold, like any other request; any other refusal
// means the replica cannot serve the session any more.
func (t *balancingTransport) roundTripPinned(req *http.Request, c *call, body *replayBody) (*http.Response, error) {
	for {
		b := t.g.pinnedBackend(c)
		if b == nil {
			return nil, errSessionNotFound(c.key, "the replica that held the session has stopped")
		}
		res, retry, err := t.attempt(req, c, b, body)
		switch {
		case retry == retryPinnedFull:
			discard(res)
			c.st.metrics.retries.WithLabelValues(retry).Inc()
			if err := t.g.waitPinnedCapacity(req.Context(), c, b); err != nil {
				return nil, err
			}
			continue
		case retry != "":
			// Not listening, shutting down, or its agent process is down:
			// whatever the replica held in memory is lost.
			if res != nil {
				discard(res)
			}
			return nil, errSessionNotFound(c.key, "the replica that held the session no longer serves it")
		case err != nil:
			return nil, err
		}
		t.annotate(res, c)
		return res, nil
	}
}

// pinnedBackend finds the session's replica among the ready ones (sharing
// their in-flight accounting) or the draining ones, or returns nil.
func (g *Gateway) pinnedBackend(c *call) *backend {
	route := c.proto.pin.route
	for _, b := range c.st.backends(g.platform).backends {
		if sameReplica(b.Endpoint, route) {
			return b
		}
	}
	if d, ok := g.platform.(platform.Draining); ok {
		eps, _ := d.DrainingEndpoints(c.key)
		for _, ep := range eps {
			if sameReplica(ep, route) {
				return &backend{Endpoint: ep}
			}
		}
	}
	return nil
}

// sameReplica matches by address and name, so a new replica that happens
// to reuse a gone one's address never receives that one's sessions.
func sameReplica(ep platform.Endpoint, r session.Route) bool {
	return ep.Addr == r.Addr && ep.Replica == r.Replica
}

// pinnedPresent reports whether the session's replica is still listed,
// with channels closed at the next change of either list.
func (g *Gateway) pinnedPresent(c *call) (present bool, ready, draining <-chan struct{}) {
	route := c.proto.pin.route
	eps, ready := g.platform.ReadyEndpoints(c.key)
	for _, ep := range eps {
		present = present || sameReplica(ep, route)
	}
	if d, ok := g.platform.(platform.Draining); ok {
		eps, draining = d.DrainingEndpoints(c.key)
		for _, ep := range eps {
			present = present || sameReplica(ep, route)
		}
	}
	return present, ready, draining
}

// endWhenGone ends a session's stream cleanly once its replica has left
// both the ready and the draining list: the replica is about to stop, and a
// clean end tells the client to reconnect, which then learns (404) that the
// session is gone, instead of a connection cut when the replica exits.
func (g *Gateway) endWhenGone(c *call, s *sseBody) {
	for {
		present, ready, draining := g.pinnedPresent(c)
		if !present {
			s.stop()
			return
		}
		select {
		case <-ready:
		case <-draining: // nil when the platform has no draining list: never fires
		case <-s.closed:
			return
		}
	}
}

// waitPinnedCapacity waits while the session's replica refuses for
// capacity, counted as held demand, until a slot may have freed or its
// refusal mark lapses; past the capacity hold the client gets 503.
func (g *Gateway) waitPinnedCapacity(ctx context.Context, c *call, b *backend) error {
	remaining := g.cfg.CapacityHold - c.capacityWait
	if remaining <= 0 {
		return g.noCapacity(c)
	}
	leave, ok := c.st.hold(g.cfg.MaxHeld)
	if !ok {
		c.st.rejected.Add(1)
		c.st.metrics.rejected.WithLabelValues("hold_full").Inc()
		return errHoldFull(c.key, g.cfg.RetryAfter)
	}
	defer leave()
	c.st.waiters.Add(1)
	defer c.st.waiters.Add(-1)
	freed := c.st.freed()
	wait := min(remaining, max(time.Duration(b.fullUntil.Load()-time.Now().UnixNano()), time.Millisecond))
	start := time.Now()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-freed:
	case <-timer.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.capacityWait += time.Since(start)
	return nil
}
