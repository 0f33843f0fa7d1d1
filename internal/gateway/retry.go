package gateway

import (
	"io"
	"math"
	"net/http"
	"time"

	"github.com/flint-dev/flint/internal/wire"
)

// What a sidecar's rejection may say, and the status it comes with: the
// gateway resends only these. The sidecar removes every X-Flint-* header
// an agent sets (proxy/upstream.go), so they are the sidecar's own word
// that the agent never saw the request; anything else is the agent's
// answer and goes to the client.
var sidecarRejections = map[string]int{
	wire.RejectCapacity:            http.StatusServiceUnavailable,
	wire.RejectNotReady:            http.StatusServiceUnavailable,
	wire.RejectShutdown:            http.StatusServiceUnavailable,
	wire.RejectUpstreamUnavailable: http.StatusBadGateway,
}

// retryCapacity is the retry reason of a replica that refused for capacity:
// over the retry budget, such a request waits in the capacity hold rather
// than getting the refusal.
const retryCapacity = "rejected_" + wire.RejectCapacity

// retryConnect is the retry reason of a replica that could not be reached
// (nothing of the request was sent). Over the retry budget it too waits in
// the capacity hold: behind a Service (-direct-to-pod=false) the gateway
// sees a ready endpoint before the cluster's service proxy routes the
// ClusterIP (kube-proxy syncs at most once a second, and a Service it has
// not yet programmed refuses connections), so the first request after a
// cold start would otherwise get a 502 a moment before the agent is
// reachable.
const retryConnect = "connect"

// rejection returns the retry reason of a sidecar's rejection, or "".
func rejection(res *http.Response) string {
	v := res.Header[wire.HeaderRejected]
	if len(v) == 0 {
		return ""
	}
	if status, ok := sidecarRejections[v[0]]; ok && len(v) == 1 && res.StatusCode == status {
		return "rejected_" + v[0]
	}
	return ""
}

// RetryBudget bounds the attempts the gateway resends, as Envoy's retry
// budgets do, so that a misbehaving replica or a storm of refusals cannot
// multiply the load on an agent.
type RetryBudget struct {
	// PerRequest is the most times one request is resent.
	PerRequest int
	// Fraction of an agent's requests in progress that may be retrying at
	// once; beyond it (and Min) a request gets the answer it had.
	Fraction float64
	// Min retrying requests allowed per agent whatever the fraction says,
	// so a quiet agent can still retry.
	Min int
}

func defaultRetryBudget() RetryBudget {
	return RetryBudget{PerRequest: 5, Fraction: 0.2, Min: 10}
}

// allowRetry decides whether c may be resent, counting it against the
// budget. A request retrying holds one place in its agent's retrying count
// until its transport returns (endRetries).
func (g *Gateway) allowRetry(c *call) bool {
	b := g.cfg.Retry
	if c.retries >= b.PerRequest {
		c.st.metrics.retriesDenied.WithLabelValues("request").Inc()
		return false
	}
	if c.retries == 0 {
		limit := max(int64(b.Min), int64(math.Ceil(b.Fraction*float64(c.st.active.Load()))))
		if c.st.retrying.Add(1) > limit {
			c.st.retrying.Add(-1)
			c.st.metrics.retriesDenied.WithLabelValues("agent").Inc()
			return false
		}
	}
	c.retries++
	return true
}

// endRetries gives back the request's place in the retrying count.
func (c *call) endRetries() {
	if c.retries > 0 {
		c.st.retrying.Add(-1)
	}
}

// discard drops a rejection the gateway will resend elsewhere; closing its
// body gives the replica's slot back.
func discard(res *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10))
	res.Body.Close()
}

// backOff keeps b out of picks for a while after it refused a request.
func (g *Gateway) backOff(b *backend) {
	b.fullUntil.Store(time.Now().Add(g.cfg.FullBackoff).UnixNano())
}
