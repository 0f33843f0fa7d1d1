// Package platformtest provides a platform.Platform whose agents and ready
// replicas a test sets by hand, which records every scale it is asked for
// and can be told to refuse them, and a helper that runs a real sidecar in
// front of a test upstream, so gateway and autoscaler tests (and tracing,
// the dashboard, the CLI) need neither processes nor a cluster.
package platformtest

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/proxy"
	"github.com/flint-dev/flint/internal/testutil"
)

// Platform is an in-memory platform.Platform.
type Platform struct {
	mu       sync.Mutex
	agents   map[platform.AgentKey]*v1alpha1.Agent
	scale    map[platform.AgentKey]int32
	calls    []ScaleCall
	scaleErr error
	eps      platform.EndpointSet
	// OnSetScale, when set, is called after each SetScale (e.g. to start
	// sidecars and mark them ready).
	OnSetScale func(key platform.AgentKey, n int32)
}

var _ platform.Platform = (*Platform)(nil)

// ScaleCall is one SetScale the platform accepted.
type ScaleCall struct {
	Key platform.AgentKey
	N   int32
	At  time.Time // time.Now() when it was asked: the bubble's clock under synctest
}

// New returns a platform with agents, defaulted.
func New(agents ...*v1alpha1.Agent) *Platform {
	p := &Platform{agents: map[platform.AgentKey]*v1alpha1.Agent{}, scale: map[platform.AgentKey]int32{}}
	for _, a := range agents {
		p.SetAgent(a)
	}
	return p
}

// SetAgent adds the agent, defaulted, or replaces the one with its key (a
// spec change).
func (p *Platform) SetAgent(a *v1alpha1.Agent) {
	a = a.DeepCopy()
	a.Default()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.agents[platform.KeyOf(a)] = a
}

// RemoveAgent forgets the agent (it was deleted); its ready replicas and
// scale stay as they were, as a platform's caches may lag.
func (p *Platform) RemoveAgent(key platform.AgentKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.agents, key)
}

// FailScale makes every SetScale from now on fail with err, recording
// nothing, until FailScale(nil).
func (p *Platform) FailScale(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.scaleErr = err
}

// ScaleCalls returns the SetScale calls accepted so far, oldest first.
func (p *Platform) ScaleCalls() []ScaleCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// Agent returns a minimal valid agent.
func Agent(namespace, name string, concurrency int32) *v1alpha1.Agent {
	a := &v1alpha1.Agent{}
	a.Namespace, a.Name = namespace, name
	a.Spec.Container.Port = 8080
	a.Spec.Container.Command = []string{name}
	a.Spec.Concurrency = concurrency
	return a
}

// SetReady replaces the agent's ready replicas (waking held requests) and,
// when the scale is below their number, raises it to match.
func (p *Platform) SetReady(key platform.AgentKey, eps ...platform.Endpoint) {
	p.mu.Lock()
	if p.scale[key] < int32(len(eps)) {
		p.scale[key] = int32(len(eps))
	}
	p.mu.Unlock()
	p.eps.Set(key, eps)
}

// Agent implements platform.Platform.
func (p *Platform) Agent(key platform.AgentKey) (*v1alpha1.Agent, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.agents[key]
	return a, ok
}

// Agents implements platform.Platform, sorted by key.
func (p *Platform) Agents() []*v1alpha1.Agent {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*v1alpha1.Agent, 0, len(p.agents))
	for _, a := range p.agents {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return platform.KeyOf(out[i]).String() < platform.KeyOf(out[j]).String() })
	return out
}

// ReadyEndpoints implements platform.Platform.
func (p *Platform) ReadyEndpoints(key platform.AgentKey) ([]platform.Endpoint, <-chan struct{}) {
	return p.eps.Get(key)
}

// Replicas implements platform.Platform.
func (p *Platform) Replicas(key platform.AgentKey) int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.scale[key]
}

// SetScale implements platform.Platform: it records the call and sets the
// scale, or fails as FailScale said.
func (p *Platform) SetScale(_ context.Context, key platform.AgentKey, n int32) error {
	p.mu.Lock()
	if err := p.scaleErr; err != nil {
		p.mu.Unlock()
		return err
	}
	p.calls = append(p.calls, ScaleCall{Key: key, N: n, At: time.Now()})
	p.scale[key] = n
	hook := p.OnSetScale
	p.mu.Unlock()
	if hook != nil {
		hook(key, n)
	}
	return nil
}

// RecordInvocation implements platform.Platform.
func (p *Platform) RecordInvocation(platform.AgentKey, time.Time) {}

// StartSidecar runs a real sidecar (`flint proxy`) in front of the agent at
// upstreamAddr until the test ends, waits until it is ready and returns its
// endpoint.
func StartSidecar(t testing.TB, upstreamAddr string, concurrency int, replica string) platform.Endpoint {
	t.Helper()
	cfg := proxy.DefaultConfig()
	cfg.UpstreamAddr = upstreamAddr
	cfg.Concurrency = concurrency
	sc := RunSidecar(t, cfg)
	return platform.Endpoint{Addr: sc.ServingAddr(), AdminAddr: sc.AdminAddr(), Replica: replica}
}

// RunSidecar runs a real sidecar with cfg until the test ends, on free
// loopback ports and with no drain delay, and waits until it is ready (it
// has reached cfg.UpstreamAddr), for tests that need a sidecar configured
// as the manager or the gateway would (a gateway token, TLS).
func RunSidecar(t testing.TB, cfg proxy.Config) *proxy.Sidecar {
	t.Helper()
	cfg.ServingAddr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DrainDelay = 0
	sc, err := proxy.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	sidecarReady.Until(t, "the sidecar in front of "+cfg.UpstreamAddr+" to be ready", sc.Ready)
	return sc
}

// sidecarReady bounds the wait for a sidecar to reach its upstream on a
// loaded machine.
var sidecarReady = testutil.Poller{Timeout: 30 * time.Second, Interval: 5 * time.Millisecond}
