package gateway

import (
	"flag"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
)

// pokeFunc adapts a function to Scaler.
type pokeFunc func(platform.AgentKey)

func (f pokeFunc) Poke(k platform.AgentKey) { f(k) }

var echoKey = platform.AgentKey{Namespace: "default", Name: "echo"}

func testAgent(concurrency int32) *v1alpha1.Agent {
	return platformtest.Agent(echoKey.Namespace, echoKey.Name, concurrency)
}

// startSidecar runs a real sidecar in front of upstream and returns its endpoint.
func startSidecar(t *testing.T, upstream *httptest.Server, concurrency int, name string) platform.Endpoint {
	t.Helper()
	return platformtest.StartSidecar(t, upstream.Listener.Addr().String(), concurrency, name)
}

// eventLoops runs the tests' gateways with that many event loops
// (Config.EventLoops): hack/test.sh runs the package once without and once
// with them.
var eventLoops = flag.Int("event-loops", 0, "serve the tests' gateways with this many event loops")

// startGateway serves a gateway over p on a real loopback socket.
func startGateway(t *testing.T, p platform.Platform, scaler Scaler, mutate func(*Config)) (*Gateway, *httptest.Server) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.EventLoops = *eventLoops
	// Test requests name placeholder hosts (Host: x); hostguard_test.go
	// tests the Host and Origin checks.
	cfg.AllowedHosts = []string{"*"}
	if mutate != nil {
		mutate(&cfg)
	}
	gw, err := New(cfg, p, scaler, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	// Serve as the gateway serves its public port: the relay, then the
	// gateway's own server (header limits and timeouts, not httptest's
	// defaults) for what the relay does not take.
	srv := httptest.NewUnstartedServer(gw)
	srv.Config = gw.Server()
	serving := gw.servingServer(srv.Config)
	srv.URL = "http://" + srv.Listener.Addr().String()
	go func() { _ = serving.Serve(srv.Listener) }()
	t.Cleanup(func() {
		_ = serving.Close()
		srv.Close()
		gw.Close()
	})
	return gw, srv
}

// counter counts calls, for upstreams that must record who served.
type counter struct{ n atomic.Int64 }

func (c *counter) handler(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { c.n.Add(1); h(w, r) }
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
