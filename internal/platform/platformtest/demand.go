package platformtest

import (
	"slices"
	"strings"
	"sync"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/wire"
)

// GatewayDemand is a gateway's demand counts as a test sets them: what the
// autoscaler reads (autoscaler.DemandSource) and a gateway's control port
// serves (demand.Source), without a gateway.
type GatewayDemand struct {
	mu sync.Mutex
	d  map[platform.AgentKey]wire.Demand
}

// Set replaces the agent's counts.
func (g *GatewayDemand) Set(key platform.AgentKey, d wire.Demand) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.d == nil {
		g.d = map[platform.AgentKey]wire.Demand{}
	}
	g.d[key] = d
}

// Demand returns the agent's counts (zero until Set).
func (g *GatewayDemand) Demand(key platform.AgentKey) wire.Demand {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.d[key]
}

// DemandKeys lists the agents whose counts were set, sorted.
func (g *GatewayDemand) DemandKeys() []platform.AgentKey {
	g.mu.Lock()
	defer g.mu.Unlock()
	keys := make([]platform.AgentKey, 0, len(g.d))
	for k := range g.d {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b platform.AgentKey) int { return strings.Compare(a.String(), b.String()) })
	return keys
}
