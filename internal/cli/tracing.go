package cli

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/flint-dev/flint/internal/telemetry"
)

// setupTracing installs the tracing pipeline the standard OTEL_* variables
// ask for (none unless OTEL_TRACES_EXPORTER or an OTLP endpoint is set) for
// the role's gateways and sidecars, and returns the function that flushes
// it at exit. service is the default service.name.
func setupTracing(ctx context.Context, service string, log *slog.Logger, console io.Writer) (func(), error) {
	t, err := telemetry.FromEnv(ctx, service, os.Getenv, console)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return func() {}, nil
	}
	telemetry.Install(t)
	log.Info("tracing on", "exporter", os.Getenv("OTEL_TRACES_EXPORTER"), "endpoint", firstSet("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"))
	return func() {
		// Spans still buffered get a few seconds to leave; an unreachable
		// collector must not hold up shutdown.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := t.Shutdown(sctx); err != nil {
			log.Warn("could not flush traces", "error", err)
		}
		telemetry.Install(nil)
	}, nil
}

func firstSet(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}
