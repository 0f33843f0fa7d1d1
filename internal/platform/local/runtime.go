// Package local runs agents as child processes on this machine, each
// replica fronted by its own in-process sidecar: Flint's embedded runtime
// behind `flint up`, implementing platform.Platform.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/agentfile"
	"github.com/flint-dev/flint/internal/mcp"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/proxy"
)

// Runtime runs agents locally. It implements platform.Platform.
type Runtime struct {
	cfg       Config
	log       *slog.Logger
	agents    map[platform.AgentKey]*agentRunner
	endpoints platform.EndpointSet
	outMu     sync.Mutex
	stopping  sync.WaitGroup
	procs     sync.Map // *process -> struct{}: every agent process running, for Kill

	// draining lists stopping MCP replicas still serving their sessions
	// (mcp.go); shutdown is closed when the whole runtime stops.
	draining     platform.EndpointSet
	shutdown     chan struct{}
	shutdownOnce sync.Once
}

var (
	_ platform.Platform        = (*Runtime)(nil)
	_ platform.FailureReporter = (*Runtime)(nil)
	_ platform.Draining        = (*Runtime)(nil)
)

// New prepares a runtime for the loaded agents; nothing runs until the
// autoscaler (or a caller) sets a scale.
func New(cfg Config, loaded []agentfile.Loaded, log *slog.Logger) (*Runtime, error) {
	if cfg.Output == nil {
		cfg.Output = os.Stderr
	}
	rt := &Runtime{cfg: cfg, log: log, agents: map[platform.AgentKey]*agentRunner{}, shutdown: make(chan struct{})}
	for _, l := range loaded {
		a := l.Agent.DeepCopy()
		a.Default()
		key := platform.KeyOf(a)
		if _, dup := rt.agents[key]; dup {
			return nil, fmt.Errorf("agent %s is defined twice", key)
		}
		env, err := envOf(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l.File, err)
		}
		stdio, err := mcp.UsesStdio(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l.File, err)
		}
		rt.agents[key] = &agentRunner{rt: rt, agent: a, dir: l.Dir, env: env, stdio: stdio}
	}
	return rt, nil
}

// envOf turns the agent's env into NAME=value pairs. Only literal values
// make sense without a cluster.
func envOf(a *v1alpha1.Agent) ([]string, error) {
	var env []string
	for _, e := range a.Spec.Container.Env {
		if e.ValueFrom != nil {
			return nil, fmt.Errorf("spec.container.env[%s]: valueFrom needs Kubernetes; give a literal value in local mode", e.Name)
		}
		env = append(env, e.Name+"="+e.Value)
	}
	return env, nil
}

// sidecarConfig is the sidecar for one replica of a: local endpoint removal
// is synchronous, so no drain delay is needed before finishing in-flight work.
func (rt *Runtime) sidecarConfig(a *v1alpha1.Agent, port int) proxy.Config {
	cfg := proxy.DefaultConfig()
	cfg.ServingAddr = "127.0.0.1:0"
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.UpstreamAddr = fmt.Sprintf("127.0.0.1:%d", port)
	cfg.Concurrency = int(a.Spec.Concurrency)
	cfg.QueueDepth = rt.cfg.QueueDepth
	cfg.RequestTimeout = a.Spec.RequestTimeout()
	cfg.DrainDelay = 0
	cfg.DrainTimeout = rt.cfg.DrainTimeout
	if p := a.Spec.Container.ReadinessProbe; p != nil && p.HTTPGet != nil {
		cfg.ProbePath = p.HTTPGet.Path
	}
	mcpSidecarConfig(&cfg, a)
	return cfg
}

// Agent implements platform.Platform.
func (rt *Runtime) Agent(key platform.AgentKey) (*v1alpha1.Agent, bool) {
	a, ok := rt.agents[key]
	if !ok {
		return nil, false
	}
	return a.agent, true
}

// Agents implements platform.Platform.
func (rt *Runtime) Agents() []*v1alpha1.Agent {
	out := make([]*v1alpha1.Agent, 0, len(rt.agents))
	for _, a := range rt.agents {
		out = append(out, a.agent)
	}
	sort.Slice(out, func(i, j int) bool { return platform.KeyOf(out[i]).String() < platform.KeyOf(out[j]).String() })
	return out
}

// ReadyEndpoints implements platform.Platform.
func (rt *Runtime) ReadyEndpoints(key platform.AgentKey) ([]platform.Endpoint, <-chan struct{}) {
	return rt.endpoints.Get(key)
}

// Replicas implements platform.Platform.
func (rt *Runtime) Replicas(key platform.AgentKey) int32 {
	if a, ok := rt.agents[key]; ok {
		return a.desired.Load()
	}
	return 0
}

// SetScale implements platform.Platform.
func (rt *Runtime) SetScale(_ context.Context, key platform.AgentKey, n int32) error {
	a, ok := rt.agents[key]
	if !ok {
		return fmt.Errorf("scale agent %s: no such agent", key)
	}
	if n < 0 {
		return fmt.Errorf("scale agent %s: negative replicas %d", key, n)
	}
	a.setScale(n)
	return nil
}

// RecordInvocation implements platform.Platform.
func (rt *Runtime) RecordInvocation(key platform.AgentKey, t time.Time) {
	if a, ok := rt.agents[key]; ok {
		a.lastInvocation.Store(t.UnixNano())
	}
}

// Failure implements platform.FailureReporter: an agent whose processes
// keep failing to start or stay up, with no ready replica, is failing.
func (rt *Runtime) Failure(key platform.AgentKey) (reason, message string, failing bool) {
	if a, ok := rt.agents[key]; ok {
		return a.failure()
	}
	return "", "", false
}

// LastInvocation is when a request last reached the agent (zero if never).
func (rt *Runtime) LastInvocation(key platform.AgentKey) time.Time {
	if a, ok := rt.agents[key]; ok {
		if ns := a.lastInvocation.Load(); ns > 0 {
			return time.Unix(0, ns)
		}
	}
	return time.Time{}
}

// Shutdown stops every replica of every agent in parallel, draining their
// in-flight requests, and waits for all processes to exit or ctx to end.
func (rt *Runtime) Shutdown(ctx context.Context) error {
	rt.beginShutdown()
	for _, a := range rt.agents {
		a.setScale(0)
	}
	done := make(chan struct{})
	go func() {
		for _, a := range rt.agents {
			a.wait()
		}
		rt.stopping.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New("shutdown: replicas still stopping when the deadline passed")
	}
}

// Kill SIGKILLs every agent process group at once: the second Ctrl-C of
// `flint up`, after Shutdown was asked to drain and the user would rather not wait.
func (rt *Runtime) Kill() {
	rt.procs.Range(func(k, _ any) bool {
		k.(*process).kill()
		return true
	})
}

// readyEndpoints lists the ready replicas of a runner, sorted by name for
// a stable order.
func readyEndpoints(rs []*replica) []platform.Endpoint {
	var eps []platform.Endpoint
	for _, r := range rs {
		if r.ready() {
			eps = append(eps, r.endpoint())
		}
	}
	slices.SortFunc(eps, func(a, b platform.Endpoint) int {
		if a.Replica < b.Replica {
			return -1
		}
		if a.Replica > b.Replica {
			return 1
		}
		return 0
	})
	return eps
}
