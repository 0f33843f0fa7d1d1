package telemetry

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// Span names. They are fixed (the agent is an attribute), so a tracing
// backend can aggregate them without a name per agent.
const (
	SpanGatewayInvoke   = "gateway.invoke"   // the gateway's server span of one invocation
	SpanGatewayHold     = "gateway.hold"     // held while cold or while every replica is full
	SpanGatewayAttempt  = "gateway.attempt"  // one try at one replica (a retry is another)
	SpanSidecarServe    = "sidecar.serve"    // the sidecar's server span, admission included
	SpanSidecarUpstream = "sidecar.upstream" // the sidecar's call to the agent
)

// Attribute keys Flint adds to its spans.
const (
	AttrAgent      = attribute.Key("flint.agent")       // namespace/name
	AttrHoldReason = attribute.Key("flint.hold.reason") // cold-start or capacity
	AttrReplica    = attribute.Key("flint.replica")
)

// Handler returns h with a server span per request, continuing the trace
// the request's traceparent names. Requests for which traced returns false
// (health checks, metrics, dashboard polls) get none. With tracing off h is
// returned as it is.
func (t *Tracing) Handler(h http.Handler, span string, traced func(*http.Request) bool) http.Handler {
	if t == nil {
		return h
	}
	opts := []otelhttp.Option{
		otelhttp.WithTracerProvider(t.provider),
		otelhttp.WithPropagators(t.propagator),
		// Flint's own Prometheus series already count requests; OTel
		// metrics here would double the bookkeeping on every request.
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return span }),
	}
	if traced != nil {
		opts = append(opts, otelhttp.WithFilter(traced))
	}
	return otelhttp.NewHandler(h, span, opts...)
}

// Transport returns rt with a client span per round trip whose context is
// injected as the outgoing traceparent. With tracing off rt is returned as
// it is.
func (t *Tracing) Transport(rt http.RoundTripper, span string) http.RoundTripper {
	if t == nil {
		return rt
	}
	return otelhttp.NewTransport(rt,
		otelhttp.WithTracerProvider(t.provider),
		otelhttp.WithPropagators(t.propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return span }),
	)
}

// Annotate adds attributes to the span in ctx, if any is recording.
func Annotate(ctx context.Context, attrs ...attribute.KeyValue) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attrs...)
	}
}

// Start begins a child span of ctx's span and returns the function that
// ends it, recording err (when not nil) as the span's error. With tracing
// off (t or tracer nil) it does nothing and allocates nothing.
func Start(ctx context.Context, tracer trace.Tracer, name string, attrs ...attribute.KeyValue) (context.Context, func(err error)) {
	if tracer == nil {
		return ctx, endNothing
	}
	ctx, span := tracer.Start(ctx, name, trace.WithAttributes(attrs...))
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

func endNothing(error) {}
