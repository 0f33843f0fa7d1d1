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
// tick rather than at its end. Poke never blocks: pokes are coalesced per
// agent and served by Run; pokes before Run starts are served when it does.
func (l *Loop) Poke(key platform.AgentKey) {
	l.pokeMu.Lock()
	l.pokes[key] = struct{}{}
	l.pokeMu.Unlock()
	select {
	case l.pokeSignal <- struct{}{}:
	default: // a signal is already pending; it will pick this key up
	}
}

// servePokes hands every poked agent's worker a poke, starting the worker
// of an agent at rest or not seen yet. Run calls it.
func (l *Loop) servePokes(ctx context.Context) {
	l.pokeMu.Lock()
	keys := make([]platform.AgentKey, 0, len(l.pokes))
	for key := range l.pokes {
		keys = append(keys, key)
	}
	clear(l.pokes)
	l.pokeMu.Unlock()
	for _, key := range keys {
		l.mu.Lock()
		st, ok := l.agents[key]
		l.mu.Unlock()
		if !ok {
			a := l.platformAgent(key)
			if a == nil {
				l.log.Debug("autoscaler poked for an unknown agent", "agent", key.String())
				continue
			}
			st = l.state(key, SpecOf(a))
			st.seen = l.scans
		}
		select {
		case st.pokes <- struct{}{}:
		default: // one is pending: pokes coalesce
		}
		switch st.phase {
		case phaseResting:
			l.start(ctx, st, l.scans-st.restScan)
		case phaseNew:
			l.start(ctx, st, 0)
		}
	}
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
