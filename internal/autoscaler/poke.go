package autoscaler

import (
	"context"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
)

// Poke tells the Loop that the gateway is holding a request for key. If the
// agent has no replicas asked for, the Loop asks for one at once instead of
// at the next tick. If it has replicas (every one is full), the Loop decides
// early, at most every quarter tick, so a step of load is met within the
// tick rather than at its end. Poke never blocks: pokes are coalesced per agent and
// served by Run; pokes before Run starts are served when it does.
func (l *Loop) Poke(key platform.AgentKey) {
	l.pokeMu.Lock()
	l.pokes[key] = struct{}{}
	l.pokeMu.Unlock()
	select {
	case l.pokeSignal <- struct{}{}:
	default: // a signal is already pending; it will pick this key up
	}
}

// servePokes starts an activation for every poked agent until ctx is done.
func (l *Loop) servePokes(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.pokeSignal:
		}
		l.pokeMu.Lock()
		keys := make([]platform.AgentKey, 0, len(l.pokes))
		for key := range l.pokes {
			keys = append(keys, key)
		}
		clear(l.pokes)
		l.pokeMu.Unlock()
		for _, key := range keys {
			l.startActivation(ctx, key)
		}
	}
}

// startActivation runs activate for key in its own goroutine, so a slow
// SetScale for one agent never delays another's cold start. At most one
// activation per agent runs; a poke meanwhile makes it go round once more.
func (l *Loop) startActivation(ctx context.Context, key platform.AgentKey) {
	a := l.platformAgent(key)
	if a == nil {
		l.log.Debug("autoscaler poked for an unknown agent", "agent", key.String())
		return
	}
	st := l.state(key, SpecOf(a))
	if st.activating.Swap(true) {
		st.repoke.Store(true)
		return
	}
	l.workers.Go(func() {
		for {
			st.repoke.Store(false)
			l.activate(ctx, st)
			if st.repoke.Load() {
				continue
			}
			st.activating.Store(false)
			// A poke between the Load and the Store saw activating
			// still set and only raised repoke: take it over.
			if !st.repoke.Load() || st.activating.Swap(true) {
				return
			}
		}
	})
}

// activate asks for the first replica if the agent has none, and otherwise
// runs an early tick (rate-limited) because requests are waiting.
func (l *Loop) activate(ctx context.Context, st *agentState) {
	if ctx.Err() != nil {
		return
	}
	if l.activateFromZero(ctx, st) {
		return
	}
	now := l.cfg.Now().UnixNano()
	last := st.lastEarly.Load()
	if now-last < int64(l.cfg.Tick/4) || !st.lastEarly.CompareAndSwap(last, now) {
		return
	}
	if a := l.platformAgent(st.key); a != nil {
		l.tickAgent(ctx, st, SpecOf(a))
	}
}

// activateFromZero asks for one replica when none is asked for.
func (l *Loop) activateFromZero(ctx context.Context, st *agentState) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	dec, ok := st.decider.Poke(l.cfg.Now(), l.platform.Replicas(st.key))
	if !ok {
		return false // replicas exist: the caller decides early instead
	}
	l.metrics.pokes.WithLabelValues(st.key.Namespace, st.key.Name).Inc()
	l.apply(ctx, st, dec)
	return true
}

// platformAgent finds an agent by key.
func (l *Loop) platformAgent(key platform.AgentKey) *v1alpha1.Agent {
	if lookup, ok := l.platform.(agentLookup); ok {
		a, found := lookup.Agent(key)
		if !found {
			return nil
		}
		return a
	}
	for _, a := range l.platform.Agents() {
		if platform.KeyOf(a) == key {
			return a
		}
	}
	return nil
}
