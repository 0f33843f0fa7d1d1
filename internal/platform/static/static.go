// Package static is a platform with a fixed list of replicas per agent,
// for running `flint gateway` in front of sidecars started by something
// else (systemd, a script, a test). It checks each replica's readiness on
// its sidecar's admin port, like an active health check; it cannot scale.
package static

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
)

// Platform serves fixed replicas. It implements platform.Platform.
type Platform struct {
	agents    map[platform.AgentKey]*v1alpha1.Agent
	replicas  map[platform.AgentKey][]platform.Endpoint
	endpoints platform.EndpointSet
	interval  time.Duration
	client    *http.Client
	log       *slog.Logger

	mu    sync.Mutex
	ready map[platform.Endpoint]bool
}

var _ platform.Platform = (*Platform)(nil)

// New builds a platform for agents whose replicas are listed in replicas.
// interval is how often each replica's readiness is checked.
func New(agents []*v1alpha1.Agent, replicas map[platform.AgentKey][]platform.Endpoint, interval time.Duration, log *slog.Logger) (*Platform, error) {
	p := &Platform{
		agents: map[platform.AgentKey]*v1alpha1.Agent{}, replicas: replicas, interval: interval, log: log,
		client: &http.Client{Timeout: interval, Transport: &http.Transport{MaxIdleConnsPerHost: 2}},
		ready:  map[platform.Endpoint]bool{},
	}
	for _, a := range agents {
		a = a.DeepCopy()
		a.Default()
		p.agents[platform.KeyOf(a)] = a
	}
	for key := range replicas {
		if _, ok := p.agents[key]; !ok {
			return nil, fmt.Errorf("replicas given for %s, but no such agent was loaded", key)
		}
	}
	return p, nil
}

// ParseReplicas parses "ns/name=servingAddr@adminAddr" entries.
func ParseReplicas(specs []string) (map[platform.AgentKey][]platform.Endpoint, error) {
	out := map[platform.AgentKey][]platform.Endpoint{}
	for _, s := range specs {
		agent, addrs, ok := strings.Cut(s, "=")
		ns, name, ok2 := strings.Cut(agent, "/")
		serving, admin, ok3 := strings.Cut(addrs, "@")
		if !ok || !ok2 || !ok3 || ns == "" || name == "" || serving == "" || admin == "" {
			return nil, fmt.Errorf("replica %q: write it as namespace/name=SERVING_ADDR@ADMIN_ADDR, e.g. default/echo=127.0.0.1:8012@127.0.0.1:8022", s)
		}
		key := platform.AgentKey{Namespace: ns, Name: name}
		out[key] = append(out[key], platform.Endpoint{Addr: serving, AdminAddr: admin, Replica: fmt.Sprintf("%s-%d", name, len(out[key]))})
	}
	return out, nil
}

// Run checks readiness until ctx ends.
func (p *Platform) Run(ctx context.Context) error {
	defer p.client.CloseIdleConnections()
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		p.check(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (p *Platform) check(ctx context.Context) {
	var wg sync.WaitGroup
	for key, eps := range p.replicas {
		results := make([]bool, len(eps))
		for i, ep := range eps {
			wg.Go(func() { results[i] = platform.SidecarReady(ctx, p.client, ep) })
		}
		wg.Wait()
		var ready []platform.Endpoint
		for i, ep := range eps {
			if results[i] {
				ready = append(ready, ep)
			}
			p.noteChange(key, ep, results[i])
		}
		p.endpoints.Set(key, ready)
	}
}

func (p *Platform) noteChange(key platform.AgentKey, ep platform.Endpoint, ready bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if was, seen := p.ready[ep]; !seen || was != ready {
		p.log.Info("replica readiness", "agent", key.String(), "replica", ep.Replica, "ready", ready)
	}
	p.ready[ep] = ready
}

// Agent implements platform.Platform.
func (p *Platform) Agent(key platform.AgentKey) (*v1alpha1.Agent, bool) {
	a, ok := p.agents[key]
	return a, ok
}

// Agents implements platform.Platform.
func (p *Platform) Agents() []*v1alpha1.Agent {
	out := make([]*v1alpha1.Agent, 0, len(p.agents))
	for _, a := range p.agents {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return platform.KeyOf(out[i]).String() < platform.KeyOf(out[j]).String() })
	return out
}

// ReadyEndpoints implements platform.Platform.
func (p *Platform) ReadyEndpoints(key platform.AgentKey) ([]platform.Endpoint, <-chan struct{}) {
	return p.endpoints.Get(key)
}

// Replicas implements platform.Platform: the fixed number of replicas.
func (p *Platform) Replicas(key platform.AgentKey) int32 { return int32(len(p.replicas[key])) }

// SetScale implements platform.Platform; fixed replicas cannot scale.
func (p *Platform) SetScale(_ context.Context, key platform.AgentKey, n int32) error {
	if int32(len(p.replicas[key])) == n {
		return nil
	}
	return fmt.Errorf("scale agent %s to %d: the static platform has a fixed set of replicas; use flint up or Kubernetes to scale", key, n)
}

// RecordInvocation implements platform.Platform; nothing is persisted.
func (p *Platform) RecordInvocation(platform.AgentKey, time.Time) {}
