package gateway

import (
	"time"

	"github.com/flint-dev/flint/internal/autoscaler"
	"github.com/flint-dev/flint/internal/platform"
)

// Demand reports what the gateway knows of an agent's load that its
// replicas cannot: held and refused requests. It implements
// autoscaler.DemandSource.
func (g *Gateway) Demand(key platform.AgentKey) autoscaler.Demand {
	v, ok := g.agents.Load(key)
	if !ok {
		return autoscaler.Demand{}
	}
	st := v.(*agentState)
	d := autoscaler.Demand{
		Held:          st.held.Load(),
		RejectedTotal: st.rejected.Load(),
		RequestsTotal: st.requests.Load(),
	}
	if ns := st.lastRequest.Load(); ns > 0 {
		d.LastRequest = time.Unix(0, ns)
	}
	return d
}

var _ autoscaler.DemandSource = (*Gateway)(nil)
