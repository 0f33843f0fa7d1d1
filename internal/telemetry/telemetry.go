// Package telemetry sets up OpenTelemetry tracing for Flint's roles from the
// standard OTEL_* environment variables. Tracing is off unless asked for, and
// when it is off nothing on the request path is wrapped: the gateway and the
// sidecar pay for spans only when someone will read them.
//
// W3C Trace Context (traceparent, tracestate) and Baggage are propagated. With
// tracing off, the gateway and the sidecar still forward a client's
// traceparent untouched, so the agent's own spans join the caller's trace.
package telemetry

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is a process's trace pipeline. A nil *Tracing means tracing is off;
// every method is safe on nil.
type Tracing struct {
	provider   trace.TracerProvider
	propagator propagation.TextMapPropagator
	shutdown   func(context.Context) error
}

// New wraps an existing provider (tests pass one with an in-memory exporter).
// The propagator is W3C Trace Context plus Baggage.
func New(tp trace.TracerProvider) *Tracing {
	return &Tracing{provider: tp, propagator: defaultPropagator(), shutdown: func(context.Context) error { return nil }}
}

func defaultPropagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Enabled reports whether spans are recorded.
func (t *Tracing) Enabled() bool { return t != nil }

// Tracer returns a named tracer; nil when tracing is off.
func (t *Tracing) Tracer(name string) trace.Tracer {
	if t == nil {
		return nil
	}
	return t.provider.Tracer(name)
}

// Shutdown flushes buffered spans and stops the exporters.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	if err := t.shutdown(ctx); err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}

// current is the process-wide pipeline. Tracing is configuration of the
// process, like OpenTelemetry's own global: sidecars are built deep inside
// the local runtime, and threading a provider through every constructor
// would touch every role for one optional feature.
var current atomic.Pointer[Tracing]

// Install makes t the process's pipeline (nil turns tracing off) for
// gateways and sidecars built afterwards.
func Install(t *Tracing) { current.Store(t) }

// Current returns the installed pipeline, nil when tracing is off.
func Current() *Tracing { return current.Load() }

// Env reads an environment variable; os.Getenv in production.
type Env func(string) string

// FromEnv builds the pipeline the environment asks for, or returns nil when
// it asks for none. Tracing is on when OTEL_TRACES_EXPORTER names an exporter
// other than "none", or, when it is unset, when an OTLP endpoint is set
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).
// OTEL_SDK_DISABLED=true wins over both. The OTLP exporter speaks
// http/protobuf and reads the rest of its settings (headers, timeout,
// compression, certificates) from OTEL_EXPORTER_OTLP_*; the SDK reads
// OTEL_TRACES_SAMPLER(_ARG) and OTEL_BSP_*; OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override the resource, whose service.name
// defaults to service. "console" writes spans as JSON to console.
func FromEnv(ctx context.Context, service string, getenv Env, console io.Writer) (*Tracing, error) {
	exporters, err := exportersFromEnv(getenv)
	if err != nil || len(exporters) == 0 {
		return nil, err
	}
	if name := getenv("OTEL_SERVICE_NAME"); name != "" {
		service = name
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES, read by the SDK itself
		resource.WithTelemetrySDK(),
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	for _, name := range exporters {
		exp, err := newExporter(ctx, name, getenv, console)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return &Tracing{provider: tp, propagator: defaultPropagator(), shutdown: tp.Shutdown}, nil
}

// exportersFromEnv returns the exporters to build; none means tracing is off.
func exportersFromEnv(getenv Env) ([]string, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return nil, nil
	}
	list := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))
	if list == "" {
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return nil, nil
		}
		list = "otlp"
	}
	var out []string
	for name := range strings.SplitSeq(list, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		switch name {
		case "none":
			return nil, nil
		case "otlp", "console":
			out = append(out, name)
		case "":
		default:
			return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: Flint supports otlp, console and none", name)
		}
	}
	return out, nil
}

func newExporter(ctx context.Context, name string, getenv Env, console io.Writer) (sdktrace.SpanExporter, error) {
	if name == "console" {
		exp, err := stdouttrace.New(stdouttrace.WithWriter(console))
		if err != nil {
			return nil, fmt.Errorf("console trace exporter: %w", err)
		}
		return exp, nil
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if protocol != "" && protocol != "http/protobuf" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: Flint exports OTLP over http/protobuf only (collectors listen for it on port 4318)", protocol)
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	return exp, nil
}
