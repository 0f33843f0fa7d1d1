package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
)

// testPlatform is a platform whose ready endpoints the test sets by hand.
type testPlatform struct {
	agents map[platform.AgentKey]*v1alpha1.Agent
	eps    platform.EndpointSet
	mu     sync.Mutex
	scale  map[platform.AgentKey]int32
}

func newTestPlatform(agents ...*v1alpha1.Agent) *testPlatform {
	p := &testPlatform{agents: map[platform.AgentKey]*v1alpha1.Agent{}, scale: map[platform.AgentKey]int32{}}
	for _, a := range agents {
		a.Default()
		p.agents[platform.KeyOf(a)] = a
	}
	return p
}

func (p *testPlatform) Agent(k platform.AgentKey) (*v1alpha1.Agent, bool) {
	a, ok := p.agents[k]
	return a, ok
}

func (p *testPlatform) Agents() []*v1alpha1.Agent {
	var out []*v1alpha1.Agent
	for _, a := range p.agents {
		out = append(out, a)
	}
	return out
}

func (p *testPlatform) ReadyEndpoints(k platform.AgentKey) ([]platform.Endpoint, <-chan struct{}) {
	return p.eps.Get(k)
}

func (p *testPlatform) Replicas(k platform.AgentKey) int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.scale[k]
}

func (p *testPlatform) SetScale(_ context.Context, k platform.AgentKey, n int32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.scale[k] = n
	return nil
}

func (p *testPlatform) RecordInvocation(platform.AgentKey, time.Time) {}

// pokeFunc adapts a function to Scaler.
type pokeFunc func(platform.AgentKey)

func (f pokeFunc) Poke(k platform.AgentKey) { f(k) }

var echoKey = platform.AgentKey{Namespace: "default", Name: "echo"}

func testAgent(concurrency int32) *v1alpha1.Agent {
	a := &v1alpha1.Agent{}
	a.Namespace, a.Name = echoKey.Namespace, echoKey.Name
	a.Spec.Container.Port = 8080
	a.Spec.Container.Command = []string{"echo"}
	a.Spec.Concurrency = concurrency
	return a
}

// startSidecar runs a real sidecar in front of upstream and returns its endpoint.
func startSidecar(t *testing.T, upstream *httptest.Server, concurrency int, name string) platform.Endpoint {
	t.Helper()
	return platformtest.StartSidecar(t, upstream.Listener.Addr().String(), concurrency, name)
}

// startGateway serves a gateway over p on a real loopback socket.
func startGateway(t *testing.T, p platform.Platform, scaler Scaler, mutate func(*Config)) (*Gateway, *httptest.Server) {
	t.Helper()
	cfg := DefaultConfig()
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
	// Serve with the gateway's own server settings (header limits and
	// timeouts), not httptest's defaults.
	srv := httptest.NewUnstartedServer(gw)
	srv.Config = gw.Server()
	srv.Start()
	t.Cleanup(func() {
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
