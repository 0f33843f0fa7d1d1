package gateway

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/telemetry"
	"github.com/flint-dev/flint/internal/ui"
	"github.com/flint-dev/flint/internal/wire"
)

// DecisionSource gives the autoscaler's recent decisions for an agent, for
// `flint describe` and the dashboard. *autoscaler.Loop implements it.
type DecisionSource interface {
	Decisions(key platform.AgentKey) []wire.Decision
}

// observability is the gateway's tracing, dashboard and the autoscaler
// decisions it shows. It lives apart from routing so that the hot path
// only ever checks one nil pointer for it.
type observability struct {
	tracing   *telemetry.Tracing // nil: tracing off, nothing is wrapped
	tracer    trace.Tracer       // nil with tracing off
	dashboard *ui.Recorder
	decisions atomic.Pointer[DecisionSource]
}

// initObservability is called by New before the proxy is built.
func (g *Gateway) initObservability(reg prometheus.Registerer) {
	g.obs.tracing = telemetry.Current()
	g.obs.tracer = g.obs.tracing.Tracer("github.com/flint-dev/flint/internal/gateway")
	g.obs.dashboard = ui.NewRecorder(g.dashboardSamples, ui.DefaultInterval, ui.DefaultKeep)
	if reg != nil {
		reg.MustRegister(inFlightCollector{g})
	}
}

// SetDecisionSource lets describe and the dashboard show the autoscaler's
// decisions; without it they show none.
func (g *Gateway) SetDecisionSource(d DecisionSource) {
	if d == nil {
		g.obs.decisions.Store(nil)
		return
	}
	g.obs.decisions.Store(&d)
}

func (g *Gateway) decisionsOf(key platform.AgentKey) []wire.Decision {
	if d := g.obs.decisions.Load(); d != nil {
		return (*d).Decisions(key)
	}
	return nil
}

// Run does the gateway's background work until ctx ends: it records the
// dashboard's history every second, so a page opened later still shows the
// last minutes. Without Run the dashboard records only while it is open.
func (g *Gateway) Run(ctx context.Context) { g.obs.dashboard.Run(ctx) }

// Handler is the gateway's handler for a server: the gateway itself, or,
// with tracing on, the gateway inside a server span per invocation (admin
// paths such as /metrics and the dashboard's polls are not traced).
func (g *Gateway) Handler() http.Handler {
	if g.obs.tracing == nil {
		return g.hosts.wrap(g)
	}
	annotated := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if route, err := ParseRoute(r.URL.EscapedPath()); err == nil {
			telemetry.Annotate(r.Context(), telemetry.AttrAgent.String(route.Agent.String()))
		}
		g.ServeHTTP(w, r)
	})
	return g.hosts.wrap(g.obs.tracing.Handler(annotated, telemetry.SpanGatewayInvoke, func(r *http.Request) bool {
		return strings.HasPrefix(r.URL.Path, RoutePrefix)
	}))
}

// traceHold starts a hold span (reason "cold-start" or "capacity"); the
// returned function ends it with the hold's outcome. Holds are the slow
// path, and with tracing off this is a nil check.
func (g *Gateway) traceHold(ctx context.Context, c *call, reason string) (context.Context, func(error)) {
	if g.obs.tracer == nil {
		return ctx, func(error) {}
	}
	return telemetry.Start(ctx, g.obs.tracer, telemetry.SpanGatewayHold,
		telemetry.AttrAgent.String(c.key.String()), telemetry.AttrHoldReason.String(reason))
}
