package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/bodyrate"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/wire"
)

// call is one client request's routing state, carried from the handler to
// the transport and the error handler as the request's context itself: a
// call is a context whose Value(callKey{}) is the call, which saves the
// handler a context.WithValue, and it holds the response's status recorder,
// which saves another allocation.
type call struct {
	context.Context // the client's request context, bounded by the agent's timeout
	rec             statusRecorder

	key          platform.AgentKey
	agent        *v1alpha1.Agent
	st           *agentState
	route        Route
	agentTimeout time.Duration
	coldWait     time.Duration
	capacityWait time.Duration
	proto        protocolCall     // MCP session pinning, A2A card rewriting (mcp_protocol.go)
	retries      int              // times resent to another replica (retry.go)
	slowBody     *bodyrate.Reader // the request body, when its rate is checked
	relayed      *relayNote       // the relay's attempt, taken as the first one (relay.go)
}

type callKey struct{}

// Value implements context.Context.
func (c *call) Value(key any) any {
	if _, ok := key.(callKey); ok {
		return c
	}
	return c.Context.Value(key)
}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// balancingTransport sends each request to one of its agent's ready
// replicas, and owns everything that may happen before the first byte
// reaches the client: holding while the agent is cold, choosing a replica,
// and retrying elsewhere when a replica refuses or cannot be reached.
type balancingTransport struct {
	g    *Gateway
	base http.RoundTripper // the gateway's transport; with tracing on, wrapped in attempt spans
}

func (t *balancingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := callFrom(req.Context())
	if c == nil {
		return nil, errors.New("request did not pass through the gateway handler")
	}
	var body *replayBody
	if req.Body != nil && req.Body != http.NoBody {
		body = newReplayBody(req.Body, t.g.cfg.ReplayBodyLimit)
	}
	if c.proto.pin != nil {
		return t.roundTripPinned(req, c, body) // an MCP session lives on one replica (mcp_pinned.go)
	}
	c.st.active.Add(1)
	defer c.st.active.Add(-1)
	defer c.endRetries()
	concurrency := int64(c.agent.Spec.Concurrency)
	var tried []*backend
	relayed := c.relayed
	for {
		set := c.st.backends(t.g.platform)
		var b *backend
		var res *http.Response
		var retry string
		var err error
		if relayed != nil {
			// The relay sent this request once already (relay.go).
			b = relayed.backend
			res, retry, err = relayed.outcome(req)
			relayed = nil
		} else {
			if len(set.backends) == 0 {
				hctx, endSpan := t.g.traceHold(req.Context(), c, "cold-start")
				err := t.g.holdCold(hctx, c, set)
				endSpan(err)
				if err != nil {
					return nil, err
				}
				continue
			}
			if b = set.pick(concurrency, tried); b == nil {
				hctx, endSpan := t.g.traceHold(req.Context(), c, "capacity")
				err := t.g.holdForCapacity(hctx, c, set, tried)
				endSpan(err)
				if err != nil {
					return nil, err
				}
				tried = tried[:0]
				continue
			}
			res, retry, err = t.attempt(req, c, b, body)
		}
		if retry != "" && (body == nil || body.replayable()) && req.Context().Err() == nil {
			if t.g.allowRetry(c) {
				if res != nil {
					discard(res)
				}
				c.st.metrics.retries.WithLabelValues(retry).Inc()
				tried = append(tried, b)
				continue
			}
			if retry == retryCapacity || retry == retryConnect {
				// Over the retry budget, a replica that was full (another
				// gateway filled it) or not yet reachable is no answer for
				// the client: the request waits in the capacity hold, as
				// when this gateway's own counts say every replica is full,
				// and goes out when a slot frees or a replica is added —
				// paced by the hold and FullBackoff, bounded by
				// CapacityHold, never resent at once.
				if res != nil {
					discard(res)
				}
				tried = append(tried, b)
				hctx, endSpan := t.g.traceHold(req.Context(), c, "capacity")
				herr := t.g.holdForCapacity(hctx, c, set, tried)
				endSpan(herr)
				if herr != nil {
					if retry == retryConnect && req.Context().Err() == nil {
						return nil, err // still unreachable when the hold ended: say so, not "busy"
					}
					return nil, herr
				}
				tried = tried[:0]
				continue
			}
		}
		if err != nil {
			return nil, err
		}
		// A rejection not resent (over the retry budget, or a body no
		// longer replayable) reaches the client as the sidecar's answer.
		delete(res.Header, wire.HeaderRejected)
		t.annotate(res, c)
		return res, nil
	}
}

// attempt sends req to b. A non-empty retry names why another replica may
// take the request instead: either err is a connection failure, or res is
// the sidecar's rejection, to be discarded or passed on.
func (t *balancingTransport) attempt(req *http.Request, c *call, b *backend, body *replayBody) (res *http.Response, retry string, err error) {
	a := newAttempt(req, b.Addr) // request, URL and releasing body in one allocation (outgoing.go)
	if b.TLSServerName != "" {
		a.url.Scheme, a.url.Host = "https", tlsHost(b.Addr, b.TLSServerName) // upstream_tls.go
	}
	out := &a.req
	if body != nil {
		out.Body = body.next()
		out.GetBody = nil
	}
	b.inFlight.Add(1)
	res, err = t.base.RoundTrip(out)
	if err != nil {
		c.st.release(b)
		if isConnectFailure(err) {
			// The replica is going away or not listening; the request never left.
			t.g.backOff(b)
			return nil, retryConnect, err
		}
		return nil, "", err
	}
	a.releaseWith(res, c.st, b)
	// The sidecar marks every answer the agent never saw (full, not ready,
	// shutting down, agent unreachable); those are safe to send elsewhere.
	if retry = rejection(res); retry != "" {
		t.g.backOff(b)
	} else {
		delete(res.Header, wire.HeaderRejected)
	}
	return res, retry, nil
}

// annotate adds the wait headers to a response that was held.
func (t *balancingTransport) annotate(res *http.Response, c *call) {
	if c.coldWait > 0 {
		c.st.metrics.coldStartWait.Observe(c.coldWait.Seconds())
		res.Header.Set(wire.HeaderColdStartWait, RoundWait(c.coldWait).String())
	}
	if c.capacityWait > 0 {
		res.Header.Set(wire.HeaderQueueWait, c.capacityWait.Round(time.Microsecond).String())
	}
}

// isConnectFailure reports errors that happen before any byte of the
// request reached the replica.
func isConnectFailure(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// releasingBody gives the replica's slot back when the response ends: at
// the end of a stream, or when a hijacked (WebSocket) connection closes.
type releasingBody struct {
	io.ReadCloser
	st   *agentState
	b    *backend
	done atomic.Bool
}

func (r *releasingBody) Close() error {
	err := r.ReadCloser.Close()
	if r.done.CompareAndSwap(false, true) {
		r.st.release(r.b)
	}
	return err
}

// Write lets ReverseProxy use a switched-protocol body as a connection.
func (r *releasingBody) Write(p []byte) (int, error) {
	if w, ok := r.ReadCloser.(io.Writer); ok {
		return w.Write(p)
	}
	return 0, errors.New("response body is not writable")
}
