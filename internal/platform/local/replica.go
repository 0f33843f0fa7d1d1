package local

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flint-dev/flint/internal/lineprefix"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/proxy"
)

// replica is one running copy of an agent: the agent's process, restarted
// with backoff when it crashes, fronted by its own in-process sidecar.
type replica struct {
	name     string
	agent    *agentRunner
	sidecar  *proxy.Sidecar
	port     int
	log      *slog.Logger
	onChange func() // tells the agent runner that readiness changed

	sidecarReady atomic.Bool
	processUp    atomic.Bool
	stopping     atomic.Bool
	sessionsOver atomic.Bool // an MCP replica's session drain has ended (mcp.go)

	cancel      context.CancelFunc
	sidecarDone chan error
	superDone   chan struct{}

	mu     sync.Mutex
	proc   *process
	stopCh chan struct{} // closed when stop begins; ends a restart backoff early
}

// endpoint is how the data plane reaches the replica.
func (r *replica) endpoint() platform.Endpoint {
	return platform.Endpoint{Addr: r.sidecar.ServingAddr(), AdminAddr: r.sidecar.AdminAddr(), Replica: r.name}
}

// ready reports whether the replica should receive requests.
func (r *replica) ready() bool {
	return r.sidecarReady.Load() && r.processUp.Load() && !r.stopping.Load()
}

func startReplica(a *agentRunner, index int) (*replica, error) {
	name := a.agent.Name + "-" + strconv.Itoa(index)
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &replica{
		name: name, agent: a, port: port,
		log:         a.rt.log.With("agent", platform.KeyOf(a.agent).String(), "replica", name),
		onChange:    a.publish,
		sidecarDone: make(chan error, 1),
		superDone:   make(chan struct{}),
		stopCh:      make(chan struct{}),
	}
	cfg := a.rt.sidecarConfig(a.agent, port)
	cfg.OnReadyChange = func(ready bool) {
		r.log.Debug("replica readiness changed", "ready", ready)
		r.sidecarReady.Store(ready)
		if ready {
			a.noteHealthy()
		}
		r.onChange()
	}
	sc, err := proxy.New(cfg, r.log)
	if err != nil {
		return nil, fmt.Errorf("replica %s: %w", name, err)
	}
	if err := sc.Listen(); err != nil {
		return nil, fmt.Errorf("replica %s: %w", name, err)
	}
	r.sidecar = sc
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.sidecarDone <- sc.Serve(ctx) }()
	go r.supervise()
	return r, nil
}

// supervise runs the agent's process, restarting it with exponential
// backoff when it exits on its own. A process that stayed up for a while
// resets the backoff, so a rare crash restarts quickly.
func (r *replica) supervise() {
	defer close(r.superDone)
	cfg := r.agent.rt.cfg
	backoff := cfg.RestartBackoff
	argv := r.agent.argv() // behind the stdio bridge for stdio MCP servers (mcp.go)
	out := lineprefix.New(r.agent.rt.cfg.Output, &r.agent.rt.outMu, r.name+" | ")
	for !r.stopping.Load() {
		started := time.Now()
		p, err := startProcess(cfg.Supervisor, argv, r.agent.dir, environ(r.agent.env, r.port, r.agent.agent.Name, r.name), out)
		if err != nil {
			r.log.Error("agent process failed to start", "error", err)
			r.agent.noteFailure("StartError", err.Error())
		} else {
			r.log.Debug("agent process started", "pid", p.cmd.Process.Pid)
			r.agent.rt.procs.Store(p, struct{}{})
			go func() { <-p.done; r.agent.rt.procs.Delete(p) }()
			r.mu.Lock()
			r.proc = p
			stopping := r.stopping.Load()
			r.mu.Unlock()
			if stopping {
				// stop ran before the process was recorded and could not stop it.
				p.stop(cfg.GracePeriod)
				return
			}
			r.processUp.Store(true)
			r.onChange()
			<-p.done
			r.processUp.Store(false)
			r.onChange()
			if r.stopping.Load() {
				return
			}
			r.log.Warn("agent process exited", "code", p.exitCode(), "after", time.Since(started).Round(time.Millisecond))
			msg := "the agent process exited with " + p.exitCode()
			if last := out.LastLine(); last != "" {
				msg += "; its last output: " + last
			}
			r.agent.noteFailure("CrashLoopBackOff", msg)
		}
		if time.Since(started) > cfg.StableRun {
			backoff = cfg.RestartBackoff
		}
		r.log.Info("restarting agent process", "in", backoff)
		select {
		case <-time.After(backoff):
		case <-r.stopCh:
			return
		}
		backoff = min(2*backoff, cfg.MaxRestartBackoff)
	}
}

// stop takes the replica out of rotation, lets the sidecar drain its
// in-flight requests, then stops the process: SIGTERM, then SIGKILL after
// the grace period. It returns when everything has exited.
func (r *replica) stop() {
	if !r.stopping.CompareAndSwap(false, true) {
		<-r.superDone
		return
	}
	close(r.stopCh) // once: the CompareAndSwap above admits one caller
	r.onChange()
	r.keepSessions() // MCP: serve the replica's sessions a while longer (mcp.go)

	r.sidecar.Drain()
	if err := <-r.sidecarDone; err != nil {
		r.log.Warn("sidecar drain ended with an error", "error", err)
	}
	r.cancel()

	r.mu.Lock()
	p := r.proc
	r.mu.Unlock()
	if p != nil {
		p.stop(r.agent.rt.cfg.GracePeriod)
		r.log.Info("replica stopped", "code", p.exitCode())
	}
	<-r.superDone
}
