package gateway

import (
	"time"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/wire"
)

// Demand reports what the gateway knows of an agent's load that its
// replicas cannot: held and refused requests. It implements
// autoscaler.DemandSource.
func (g *Gateway) Demand(key platform.AgentKey) wire.Demand {
	v, ok := g.agents.Load(key)
	if !ok {
		return wire.Demand{}
	}
	st := v.(*agentState)
	d := wire.Demand{
		Held:          st.held.Load(),
		InFlight:      st.inFlight(),
		RejectedTotal: st.rejected.Load(),
		RequestsTotal: st.requests.Load(),
	}
	if ns := st.lastRequest.Load(); ns > 0 {
		d.LastRequest = time.Unix(0, ns)
	}
	return d
}

// DemandKeys lists the agents the gateway has seen requests for.
func (g *Gateway) DemandKeys() []platform.AgentKey {
	var keys []platform.AgentKey
	g.agents.Range(func(k, _ any) bool {
		keys = append(keys, k.(platform.AgentKey))
		return true
	})
	return keys
}
