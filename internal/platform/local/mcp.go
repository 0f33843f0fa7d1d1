package local

import (
	"os"
	"strings"
	"time"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/mcp"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/proxy"
)

// What the local runtime does differently for protocol: mcp agents
// (docs/mcp.md): stdio servers run behind `flint stdio-bridge`, and a
// stopping replica keeps serving the sessions it holds for a while.

// defaultBridgeCommand runs this executable's stdio-bridge subcommand:
// `flint up` is the flint binary.
func defaultBridgeCommand() []string {
	exe, err := os.Executable()
	if err != nil {
		exe = "flint"
	}
	return []string{exe, "stdio-bridge"}
}

// argv is what a replica of a runs: the agent's command and args, behind
// the stdio bridge when the agent is a stdio MCP server. The bridge listens
// on $PORT and stops its children within the runtime's grace period.
func (a *agentRunner) argv() []string {
	spec := a.agent.Spec.Container
	cmd := append(append([]string{}, spec.Command...), spec.Args...)
	if !a.stdio {
		return cmd
	}
	bridge := append([]string{}, a.rt.cfg.BridgeCommand...)
	bridge = append(bridge, "-grace-period", a.rt.cfg.GracePeriod.String())
	if len(a.rt.cfg.BridgeAllowedHosts) > 0 {
		bridge = append(bridge, "-allowed-hosts", strings.Join(a.rt.cfg.BridgeAllowedHosts, ","))
	}
	bridge = append(bridge, "--")
	return append(bridge, cmd...)
}

// mcpSidecarConfig adjusts a replica's sidecar for an MCP agent. The
// sidecar's request timeout is off: the gateway enforces timeouts.request
// on every call but exempts a session's standalone stream, which lives as
// long as the session and must not be cut by the sidecar either. A bridged
// stdio server is ready when the bridge says so.
func mcpSidecarConfig(cfg *proxy.Config, a *v1alpha1.Agent) {
	if a.Spec.Protocol != v1alpha1.ProtocolMCP {
		return
	}
	cfg.RequestTimeout = 0
	if stdio, _ := mcp.UsesStdio(a); stdio && cfg.ProbePath == "" {
		cfg.ProbePath = "/healthz"
	}
}

// keepSessions holds a stopping replica of an MCP agent in the draining
// list for the session drain window: the gateway still sends it the
// requests of the sessions it issued, never a new session. Then it leaves
// the list; the gateway ends those sessions' streams cleanly and answers
// their next requests with 404, so clients start sessions on the replicas
// that remain, while the sidecar's drain that follows finishes calls
// already in flight. A replica that was not serving held no session.
func (r *replica) keepSessions() {
	if !r.agent.isMCP() {
		return
	}
	if d := r.agent.rt.cfg.SessionDrain; d > 0 && r.sidecarReady.Load() && r.processUp.Load() {
		r.log.Info("replica draining: serving its sessions, taking no new ones", "for", d)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.agent.rt.shutdown:
			// Flint itself is stopping: its gateway no longer routes anything.
			t.Stop()
		}
	}
	r.sessionsOver.Store(true)
	r.onChange()
}

func (a *agentRunner) isMCP() bool { return a.agent.Spec.Protocol == v1alpha1.ProtocolMCP }

// keepDrainingLocked lists a replica being stopped as draining, for an MCP
// agent. a.mu is held.
func (a *agentRunner) keepDrainingLocked(r *replica) {
	if a.isMCP() {
		a.draining = append(a.draining, r)
	}
}

// drainingEndpointsLocked lists the draining replicas still serving their
// sessions, and forgets the others. a.mu is held.
func (a *agentRunner) drainingEndpointsLocked() []platform.Endpoint {
	var eps []platform.Endpoint
	kept := a.draining[:0]
	for _, r := range a.draining {
		if r.sessionsOver.Load() {
			continue
		}
		kept = append(kept, r)
		if r.sidecarReady.Load() && r.processUp.Load() {
			eps = append(eps, r.endpoint())
		}
	}
	a.draining = kept
	return eps
}

// DrainingEndpoints implements platform.Draining.
func (rt *Runtime) DrainingEndpoints(key platform.AgentKey) ([]platform.Endpoint, <-chan struct{}) {
	return rt.draining.Get(key)
}

// beginShutdown tells replicas in their session drain window that nothing
// will route to them any more.
func (rt *Runtime) beginShutdown() {
	rt.shutdownOnce.Do(func() { close(rt.shutdown) })
}
