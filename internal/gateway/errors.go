package gateway

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/flint-dev/flint/internal/bodyrate"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/wire"
)

// gatewayError is an answer the gateway gives on its own, as JSON that says
// what happened and what the client can do.
type gatewayError struct {
	status     int
	reason     string
	message    string
	agent      platform.AgentKey
	waited     time.Duration
	retryAfter time.Duration
}

func (e *gatewayError) Error() string { return e.message }

func (e *gatewayError) write(w http.ResponseWriter) {
	body := wire.ErrorBody{Error: e.message, Reason: e.reason, WaitedSeconds: e.waited.Seconds()}
	if e.agent != (platform.AgentKey{}) {
		body.Agent = e.agent.String()
	}
	if e.retryAfter > 0 {
		secs := int(math.Ceil(e.retryAfter.Seconds()))
		body.RetryAfterSeconds = &secs
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.status)
	_, _ = w.Write(body.JSON())
}

func errBadRoute(err error) *gatewayError {
	return &gatewayError{status: http.StatusBadRequest, reason: "BadRoute", message: err.Error()}
}

func errUnknownAgent(key platform.AgentKey) *gatewayError {
	return &gatewayError{status: http.StatusNotFound, reason: "AgentNotFound", agent: key,
		message: fmt.Sprintf("no agent %s: check the namespace and name (flint agents lists them)", key)}
}

func errColdStartTimeout(key platform.AgentKey, waited time.Duration) *gatewayError {
	return &gatewayError{status: http.StatusGatewayTimeout, reason: "ColdStartTimeout", agent: key, waited: waited,
		message: fmt.Sprintf("agent %s did not become ready within %s; check its logs (does it listen on $PORT, the port Flint gives it?), or raise timeouts.coldStart", key, waited.Round(time.Millisecond))}
}

func errHoldFull(key platform.AgentKey, retryAfter time.Duration) *gatewayError {
	return &gatewayError{status: http.StatusServiceUnavailable, reason: "HoldQueueFull", agent: key, retryAfter: retryAfter,
		message: fmt.Sprintf("agent %s has too many requests waiting; retry after the Retry-After delay", key)}
}

func errBodyTooSlow(cfg bodyrate.Config) *gatewayError {
	return &gatewayError{status: http.StatusRequestTimeout, reason: "RequestBodyTooSlow",
		message: fmt.Sprintf("the request body arrived slower than %d bytes/s (after %s); send it faster", cfg.MinRate, cfg.Grace)}
}

func errNoCapacity(key platform.AgentKey, waited, retryAfter time.Duration) *gatewayError {
	return &gatewayError{status: http.StatusServiceUnavailable, reason: "NoCapacity", agent: key, waited: waited, retryAfter: retryAfter,
		message: fmt.Sprintf("every replica of agent %s is busy; retry after the Retry-After delay", key)}
}

func errRequestTimeout(key platform.AgentKey, limit time.Duration) *gatewayError {
	return &gatewayError{status: http.StatusGatewayTimeout, reason: "RequestTimeout", agent: key,
		message: fmt.Sprintf("agent %s did not answer within timeouts.request (%s)", key, limit)}
}

func errAgentFailing(key platform.AgentKey, reason, message string, retryAfter time.Duration) *gatewayError {
	return &gatewayError{status: http.StatusServiceUnavailable, reason: reason, agent: key, retryAfter: retryAfter,
		message: fmt.Sprintf("agent %s is failing: %s; check its logs and spec", key, message)}
}

func errBodyTooLarge(limit int64) *gatewayError {
	return &gatewayError{status: http.StatusRequestEntityTooLarge, reason: "BodyTooLarge",
		message: fmt.Sprintf("request body exceeds the gateway's limit of %d bytes", limit)}
}

func errBadBody(err error) *gatewayError {
	return &gatewayError{status: http.StatusBadRequest, reason: "BadRequestBody", message: err.Error()}
}

func errUpstream(key platform.AgentKey, err error) *gatewayError {
	return &gatewayError{status: http.StatusBadGateway, reason: "UpstreamError", agent: key,
		message: fmt.Sprintf("agent %s could not be reached: %v", key, err)}
}

// errorHandler turns a failed proxy attempt into the client's answer.
func (g *Gateway) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	c := callFrom(r.Context())
	var ge *gatewayError
	switch {
	case errors.As(err, &ge):
	case c != nil && c.slowBody.TooSlow():
		// Checked before the context: the server cancels it when the read
		// deadline that caught the client fires.
		w.Header().Set("Connection", "close")
		ge = errBodyTooSlow(g.cfg.BodyRate)
	case errors.As(err, new(*http.MaxBytesError)):
		ge = errBodyTooLarge(g.cfg.MaxBodyBytes)
	case errors.As(err, new(*clientBodyError)):
		// The client's body failed, not the replica.
		switch ctxErr := r.Context().Err(); {
		case errors.Is(ctxErr, context.DeadlineExceeded) && c != nil:
			ge = errRequestTimeout(c.key, c.agentTimeout)
		case ctxErr != nil:
			// It went away mid-body (Go's server cancels at EOF): nobody reads an answer.
			w.WriteHeader(499)
			return
		default:
			ge = errBadBody(err)
		}
	case errors.Is(err, context.DeadlineExceeded) && c != nil:
		ge = errRequestTimeout(c.key, c.agentTimeout)
	case errors.Is(err, context.Canceled):
		// The client left; there is nobody to answer.
		g.log.Debug("client went away", "path", r.URL.Path)
		w.WriteHeader(499)
		return
	case c == nil:
		ge = &gatewayError{status: http.StatusBadGateway, reason: "UpstreamError", message: err.Error()}
	default:
		ge = errUpstream(c.key, err)
		g.log.Warn("upstream error", "agent", c.key, "error", err)
	}
	ge.write(w)
}
