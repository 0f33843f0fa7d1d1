package gateway

import (
	"net/http"
	"time"
)

// AdminHandler serves the admin endpoints (/metrics, the dashboard, the
// agent listing and descriptions, the probes) for a listener of their own,
// such as a port that a public Service does not expose. From the first
// call on, the invocation handler answers only invocations and the probes
// (load balancers check those on the serving port); the rest is 404 there.
// Call it before serving. Without it everything shares one port, as in
// local mode.
func (g *Gateway) AdminHandler() http.Handler {
	g.adminSeparate.Store(true)
	return g.admin
}

// serveNonAgent answers a request outside the agents' routes.
func (g *Gateway) serveNonAgent(w http.ResponseWriter, r *http.Request) {
	if g.adminSeparate.Load() && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
		errNoSuchPath().write(w)
		return
	}
	g.admin.ServeHTTP(w, r)
}

func errNoSuchPath() *gatewayError {
	return &gatewayError{status: http.StatusNotFound, reason: "NotFound",
		message: "no such path: invoke agents at " + RoutePrefix + "{namespace}/{name}/"}
}

// errStarting answers for an agent the gateway does not know yet while its
// view of the cluster is still syncing: it may exist, so not 404.
func errStarting(retryAfter time.Duration) *gatewayError {
	return &gatewayError{status: http.StatusServiceUnavailable, reason: "GatewayStarting", retryAfter: retryAfter,
		message: "the gateway is starting and has not read every agent yet; retry after the Retry-After delay"}
}

// syncing reports whether the platform is still filling its view of agents.
func (g *Gateway) syncing() bool {
	s, ok := g.platform.(syncer)
	return ok && !s.HasSynced()
}
