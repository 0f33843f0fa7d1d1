package telemetry_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/flint-dev/flint/internal/gateway"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
	"github.com/flint-dev/flint/internal/telemetry"
	"github.com/flint-dev/flint/internal/testutil"
)

const (
	incomingTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingParent = "00f067aa0ba902b7"
)

var echoKey = platform.AgentKey{Namespace: "default", Name: "echo"}

// pokeFunc adapts a function to gateway.Scaler.
type pokeFunc func(platform.AgentKey)

func (f pokeFunc) Poke(k platform.AgentKey) { f(k) }

// TestTraceThroughGatewayAndSidecar sends one request with a traceparent to
// an agent at zero replicas. The gateway holds it (cold start) until the
// replica is published, then forwards it through the sidecar. Every span
// must belong to the caller's trace and form one chain: the caller's span →
// gateway.invoke → gateway.hold and gateway.attempt → sidecar.serve →
// sidecar.upstream → the agent, which sees sidecar.upstream as its parent.
func TestTraceThroughGatewayAndSidecar(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	telemetry.Install(telemetry.New(tp))
	t.Cleanup(func() { telemetry.Install(nil) })

	var agentSaw atomic.Value
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		agentSaw.Store(r.Header.Get("traceparent"))
		_, _ = io.WriteString(w, "hello")
	}))
	defer agent.Close()
	ep := platformtest.StartSidecar(t, agent.Listener.Addr().String(), 4, "echo-0")

	p := platformtest.New(platformtest.Agent("default", "echo", 4))
	poke := pokeFunc(func(k platform.AgentKey) {
		// The replica turns ready a little after the poke, as a cold start does.
		time.AfterFunc(30*time.Millisecond, func() { p.SetReady(k, ep) })
	})
	gw, err := gateway.New(gateway.DefaultConfig(), p, poke, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/agents/default/echo/hi", nil)
	req.Header.Set("traceparent", "00-"+incomingTrace+"-"+incomingParent+"-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(body) != "hello" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}

	spans := waitForSpans(t, rec, 5)
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		if got := s.SpanContext().TraceID().String(); got != incomingTrace {
			t.Errorf("span %s is in trace %s, want the caller's %s", s.Name(), got, incomingTrace)
		}
		byName[s.Name()] = s
	}
	invoke := mustSpan(t, byName, telemetry.SpanGatewayInvoke)
	hold := mustSpan(t, byName, telemetry.SpanGatewayHold)
	attempt := mustSpan(t, byName, telemetry.SpanGatewayAttempt)
	serve := mustSpan(t, byName, telemetry.SpanSidecarServe)
	upstream := mustSpan(t, byName, telemetry.SpanSidecarUpstream)

	if got := invoke.Parent().SpanID().String(); got != incomingParent || !invoke.Parent().IsRemote() {
		t.Errorf("gateway.invoke's parent = %s, want the caller's span %s", got, incomingParent)
	}
	wantParent(t, hold, invoke)
	wantParent(t, attempt, invoke)
	wantParent(t, serve, attempt)
	wantParent(t, upstream, serve)
	wantAttr(t, invoke, telemetry.AttrAgent, "default/echo")
	wantAttr(t, hold, telemetry.AttrHoldReason, "cold-start")

	want := "00-" + incomingTrace + "-" + upstream.SpanContext().SpanID().String() + "-01"
	if got, _ := agentSaw.Load().(string); got != want {
		t.Errorf("the agent saw traceparent %q, want %q (child of sidecar.upstream)", got, want)
	}
}

// TestTracingOffWrapsNothing: without a pipeline the gateway serves itself,
// unwrapped, and the caller's traceparent reaches the agent untouched.
func TestTracingOffWrapsNothing(t *testing.T) {
	telemetry.Install(nil)
	var agentSaw atomic.Value
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		agentSaw.Store(r.Header.Get("traceparent"))
	}))
	defer agent.Close()
	ep := platformtest.StartSidecar(t, agent.Listener.Addr().String(), 0, "echo-0")
	p := platformtest.New(platformtest.Agent("default", "echo", 0))
	p.SetReady(echoKey, ep)
	// Listening on every interface, as in a cluster, so the DNS-rebinding
	// check (on for a loopback address) adds no handler either.
	cfg := gateway.DefaultConfig()
	cfg.Addr = ":8080"
	gw, err := gateway.New(cfg, p, nil, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	if h, ok := gw.Handler().(*gateway.Gateway); !ok || h != gw {
		t.Fatalf("with tracing off Handler() = %T, want the gateway itself", gw.Handler())
	}
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()
	tp := "00-" + incomingTrace + "-" + incomingParent + "-01"
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/agents/default/echo/", nil)
	req.Header.Set("traceparent", tp)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got, _ := agentSaw.Load().(string); got != tp {
		t.Fatalf("the agent saw traceparent %q, want the caller's %q", got, tp)
	}
}

func waitForSpans(t *testing.T, rec *tracetest.SpanRecorder, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	// Server spans end just after the response is written, so the client
	// may see the body first.
	var spans []sdktrace.ReadOnlySpan
	testutil.Quick.Await(t, fmt.Sprintf("%d ended spans", n), func() (bool, string) {
		spans = rec.Ended()
		names := []string{}
		for _, s := range spans {
			names = append(names, s.Name())
		}
		return len(spans) >= n, fmt.Sprintf("%d ended spans %v", len(spans), names)
	})
	return spans
}

func mustSpan(t *testing.T, byName map[string]sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	s, ok := byName[name]
	if !ok {
		t.Fatalf("no %s span", name)
	}
	return s
}

func wantParent(t *testing.T, child, parent sdktrace.ReadOnlySpan) {
	t.Helper()
	if child.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("%s's parent is %s, want %s (%s)", child.Name(), child.Parent().SpanID(), parent.Name(), parent.SpanContext().SpanID())
	}
	if child.SpanKind() == trace.SpanKindServer && !child.Parent().IsRemote() {
		t.Errorf("%s should continue a remote parent", child.Name())
	}
}

func wantAttr(t *testing.T, s sdktrace.ReadOnlySpan, key attribute.Key, want string) {
	t.Helper()
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			if kv.Value.AsString() != want {
				t.Errorf("%s: %s = %q, want %q", s.Name(), key, kv.Value.AsString(), want)
			}
			return
		}
	}
	t.Errorf("%s has no %s attribute", s.Name(), key)
}
