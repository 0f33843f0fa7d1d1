package autoscaler

import (
	"context"
	"sync"
	"time"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/wire"
)

// quietPlatform is the quiet-agent tests' Platform: agents with ready
// endpoints, whose SetScale records the call and, like a Deployment scaled
// down, removes the endpoints beyond the new count.
type quietPlatform struct {
	mu       sync.Mutex
	agents   []*v1alpha1.Agent
	eps      map[platform.AgentKey][]platform.Endpoint
	replicas map[platform.AgentKey]int32
	calls    []quietScaleCall
}

type quietScaleCall struct {
	n  int32
	at time.Time
}

func newQuietPlatform(agents ...*v1alpha1.Agent) *quietPlatform {
	return &quietPlatform{agents: agents, eps: map[platform.AgentKey][]platform.Endpoint{}, replicas: map[platform.AgentKey]int32{}}
}

func (p *quietPlatform) Agents() []*v1alpha1.Agent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*v1alpha1.Agent(nil), p.agents...)
}

func (p *quietPlatform) ReadyEndpoints(key platform.AgentKey) ([]platform.Endpoint, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.eps[key], nil
}

func (p *quietPlatform) Replicas(key platform.AgentKey) int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.replicas[key]
}

func (p *quietPlatform) SetScale(_ context.Context, key platform.AgentKey, n int32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, quietScaleCall{n, time.Now()})
	p.replicas[key] = n
	if eps := p.eps[key]; int(n) < len(eps) {
		p.eps[key] = eps[:n]
	}
	return nil
}

// setReady makes eps the agent's ready endpoints, with as many replicas.
func (p *quietPlatform) setReady(a *v1alpha1.Agent, eps ...platform.Endpoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := platform.KeyOf(a)
	p.eps[key] = eps
	p.replicas[key] = int32(len(eps))
}

func (p *quietPlatform) scaleCalls() []quietScaleCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]quietScaleCall(nil), p.calls...)
}

// quietGateway is a DemandSource with settable demand.
type quietGateway struct {
	mu     sync.Mutex
	demand map[platform.AgentKey]wire.Demand
}

func (g *quietGateway) Demand(key platform.AgentKey) wire.Demand {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.demand[key]
}

func (g *quietGateway) set(key platform.AgentKey, d wire.Demand) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.demand == nil {
		g.demand = map[platform.AgentKey]wire.Demand{}
	}
	g.demand[key] = d
}
