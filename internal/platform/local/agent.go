package local

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
)

// agentRunner keeps an agent's replicas at the scale asked for.
type agentRunner struct {
	rt    *Runtime
	agent *v1alpha1.Agent
	dir   string
	env   []string
	stdio bool // a stdio MCP server, run behind the bridge (mcp.go)

	desired        atomic.Int32
	lastInvocation atomic.Int64
	crashes        atomic.Int64 // consecutive failures to start or stay up, reset on readiness

	failMu      sync.Mutex
	failReason  string
	failMessage string

	mu        sync.Mutex
	replicas  []*replica
	draining  []*replica // stopping MCP replicas serving their sessions (mcp.go)
	next      int
	stops     sync.WaitGroup
	published int // ready endpoints last published, for the debug log of changes
}

// setScale starts or stops replicas until n are running. Stopping ones are
// taken out of rotation at once and drain in the background.
func (a *agentRunner) setScale(n int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.desired.Store(n)
	if int32(len(a.replicas)) != n {
		// bench/coldstart times the phases of a cold start from these lines.
		a.rt.log.Debug("scale set", "agent", platform.KeyOf(a.agent).String(), "from", len(a.replicas), "to", n)
	}
	for int32(len(a.replicas)) < n {
		a.next++
		r, err := startReplica(a, a.next)
		if err != nil {
			a.rt.log.Error("cannot start replica", "agent", platform.KeyOf(a.agent).String(), "error", err)
			break
		}
		a.replicas = append(a.replicas, r)
	}
	for int32(len(a.replicas)) > n {
		victim := a.victim()
		a.replicas = removeReplica(a.replicas, victim)
		a.keepDrainingLocked(victim)
		a.stops.Add(1)
		go func() {
			defer a.stops.Done()
			victim.stop()
		}()
	}
	a.publishLocked()
}

// victim picks the replica to stop: one that is not serving if any, else
// the newest (it has the fewest warm connections and caches).
func (a *agentRunner) victim() *replica {
	for _, r := range a.replicas {
		if !r.ready() {
			return r
		}
	}
	return a.replicas[len(a.replicas)-1]
}

func removeReplica(rs []*replica, victim *replica) []*replica {
	out := rs[:0]
	for _, r := range rs {
		if r != victim {
			out = append(out, r)
		}
	}
	return out
}

// publish updates the ready-endpoint cache after a readiness change.
func (a *agentRunner) publish() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.publishLocked()
}

func (a *agentRunner) publishLocked() {
	key := platform.KeyOf(a.agent)
	eps := readyEndpoints(a.replicas)
	platform.PublishEndpoints(key, &a.rt.endpoints, &a.rt.draining, eps, a.drainingEndpointsLocked())
	if len(eps) != a.published {
		// Held requests wake at the ready list's Set above; this is when the gateway can
		// see the change (bench/coldstart reads it).
		a.published = len(eps)
		a.rt.log.Debug("ready endpoints changed", "agent", key.String(), "endpoints", len(eps))
	}
}

// crashLoopAfter is how many failures in a row, with no ready replica,
// make an agent "failing": held requests are then refused with the reason
// rather than held until the cold-start timeout.
const crashLoopAfter = 3

func (a *agentRunner) noteFailure(reason, message string) {
	a.crashes.Add(1)
	a.failMu.Lock()
	a.failReason, a.failMessage = reason, message
	a.failMu.Unlock()
}

func (a *agentRunner) noteHealthy() { a.crashes.Store(0) }

// failure reports a crash loop.
func (a *agentRunner) failure() (reason, message string, failing bool) {
	n := a.crashes.Load()
	if n < crashLoopAfter {
		return "", "", false
	}
	if eps, _ := a.rt.endpoints.Get(platform.KeyOf(a.agent)); len(eps) > 0 {
		return "", "", false
	}
	a.failMu.Lock()
	defer a.failMu.Unlock()
	return a.failReason, fmt.Sprintf("%s (%d failures in a row)", a.failMessage, n), true
}

// wait returns when every stopping replica has exited.
func (a *agentRunner) wait() { a.stops.Wait() }
