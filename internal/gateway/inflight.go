package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flint-dev/flint/internal/platform"
)

var inFlightDesc = prometheus.NewDesc("flint_gateway_in_flight_requests",
	"Requests the gateway has sent to an agent's replicas and not yet finished (held requests are flint_gateway_held_requests).",
	[]string{"namespace", "agent"}, nil)

// inFlightCollector reports each agent's in-flight requests from the
// balancer's own per-replica counters at scrape time, so the hot path does
// no extra bookkeeping for the metric.
type inFlightCollector struct{ g *Gateway }

func (c inFlightCollector) Describe(ch chan<- *prometheus.Desc) { ch <- inFlightDesc }

func (c inFlightCollector) Collect(ch chan<- prometheus.Metric) {
	c.g.agents.Range(func(k, v any) bool {
		key := k.(platform.AgentKey)
		ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue,
			float64(v.(*agentState).inFlight()), key.Namespace, key.Name)
		return true
	})
}

// inFlight sums this gateway's in-flight counts over the agent's current
// replicas. A replica that left the ready set with requests still running
// is no longer counted; that is rare and brief (it is draining them).
func (s *agentState) inFlight() int64 {
	set := s.set.Load()
	if set == nil {
		return 0
	}
	var n int64
	for _, b := range set.backends {
		n += b.inFlight.Load()
	}
	return n
}
