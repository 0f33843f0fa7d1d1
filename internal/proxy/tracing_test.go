package proxy

import (
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/flint-dev/flint/internal/telemetry"
)

// TestTracingOffLeavesTheServingPathAlone: without a tracing pipeline the
// serving port's handler is the sidecar itself and the agent is reached
// through the plain transport; with one, both are wrapped.
func TestTracingOffLeavesTheServingPathAlone(t *testing.T) {
	telemetry.Install(nil)
	s, err := New(testConfig("127.0.0.1:1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := s.servingSrv.Handler.(*Sidecar); !ok || h != s {
		t.Errorf("serving handler is %T, want the sidecar itself", s.servingSrv.Handler)
	}
	if tr := s.proxy.Transport; tr != s.transport {
		t.Errorf("proxy transport is %T, want the plain transport", s.proxy.Transport)
	}

	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(t.Context())
	telemetry.Install(telemetry.New(tp))
	defer telemetry.Install(nil)
	s, err = New(testConfig("127.0.0.1:1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.servingSrv.Handler.(*Sidecar); ok {
		t.Error("with tracing on the serving handler is not wrapped")
	}
	if s.proxy.Transport == s.transport {
		t.Error("with tracing on the transport is not wrapped")
	}
}
