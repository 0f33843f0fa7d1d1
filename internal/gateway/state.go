package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flint-dev/flint/internal/platform"
)

// agentState is the gateway's per-agent view: the snapshot of ready
// replicas, the hold queue, and the demand it reports to the autoscaler.
type agentState struct {
	key     platform.AgentKey
	set     atomic.Pointer[backendSet]
	refresh sync.Mutex // serialises snapshot rebuilds, never taken on the hot path

	held        atomic.Int64
	active      atomic.Int64 // requests in the balancing transport
	retrying    atomic.Int64 // of those, how many have been resent (retry.go)
	requests    atomic.Uint64
	rejected    atomic.Uint64
	lastRequest atomic.Int64 // unix nanos

	// Slot-freed broadcast. Completing requests only pay for it when a
	// request is actually waiting for capacity.
	waiters   atomic.Int32
	freedMu   sync.Mutex
	freedChan chan struct{}

	metrics *agentMetrics

	// What the proxied request carries for this agent, the same on every
	// request, so rewriting one allocates nothing for them: the upstream
	// host, and the X-Forwarded-Prefix header's value.
	host         string
	prefixHeader []string
}

func newAgentState(key platform.AgentKey, m *agentMetrics) *agentState {
	return &agentState{key: key, freedChan: make(chan struct{}), metrics: m,
		host:         key.Name + "." + key.Namespace,
		prefixHeader: []string{RoutePrefix + key.Namespace + "/" + key.Name},
	}
}

// backends returns a current snapshot of the agent's ready replicas.
func (s *agentState) backends(p platform.Platform) *backendSet {
	if set := s.set.Load(); set != nil && !set.stale() {
		return set
	}
	s.refresh.Lock()
	defer s.refresh.Unlock()
	prev := s.set.Load()
	if prev != nil && !prev.stale() {
		return prev
	}
	eps, changed := p.ReadyEndpoints(s.key)
	set := rebuild(prev, eps, changed)
	s.set.Store(set)
	return set
}

// freed returns the channel closed when the next slot frees.
func (s *agentState) freed() <-chan struct{} {
	s.freedMu.Lock()
	defer s.freedMu.Unlock()
	return s.freedChan
}

// release ends a request on b and wakes requests waiting for capacity.
func (s *agentState) release(b *backend) {
	b.inFlight.Add(-1)
	if s.waiters.Load() > 0 {
		s.freedMu.Lock()
		close(s.freedChan)
		s.freedChan = make(chan struct{})
		s.freedMu.Unlock()
	}
}

// hold admits a request into the agent's bounded hold queue; the returned
// function leaves it. ok is false when the queue is full.
func (s *agentState) hold(limit int) (leave func(), ok bool) {
	if s.held.Add(1) > int64(limit) {
		s.held.Add(-1)
		return nil, false
	}
	s.metrics.held.Inc()
	return func() {
		s.held.Add(-1)
		s.metrics.held.Dec()
	}, true
}

// waitForCapacity blocks until a slot may have freed on set, set has
// changed, the earliest full mark expires, or ctx ends.
func (s *agentState) waitForCapacity(ctx context.Context, set *backendSet, concurrency int64, tried []*backend) error {
	s.waiters.Add(1)
	defer s.waiters.Add(-1)
	freed := s.freed()
	// A slot may have freed between the failed pick and registering as a
	// waiter; look again before sleeping.
	if set.pick(concurrency, tried) != nil {
		return nil
	}
	timer := time.NewTimer(nextExpiry(set))
	defer timer.Stop()
	select {
	case <-freed:
	case <-set.changed:
	case <-timer.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// nextExpiry is how long until the earliest full mark on set lapses, so a
// waiter re-checks when a refusing replica may have room again.
func nextExpiry(set *backendSet) time.Duration {
	now := time.Now().UnixNano()
	next := int64(time.Second)
	for _, b := range set.backends {
		if until := b.fullUntil.Load(); until > now && until-now < next {
			next = until - now
		}
	}
	return time.Duration(next)
}
