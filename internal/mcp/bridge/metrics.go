package bridge

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flint-dev/flint/internal/hostcheck"
)

// bridgeMetrics are served on the bridge's /metrics.
type bridgeMetrics struct {
	reg      *prometheus.Registry
	children prometheus.Gauge
	ended    *prometheus.CounterVec
	refused  *prometheus.CounterVec
}

func newBridgeMetrics() *bridgeMetrics {
	m := &bridgeMetrics{
		reg: prometheus.NewRegistry(),
		children: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flint_bridge_children",
			Help: "Live sessions, each with its child process.",
		}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flint_bridge_sessions_ended_total",
			Help: "Sessions ended by the bridge rather than the client, by reason: idle (-session-idle-timeout) or evicted (the longest idle, to make room at -max-sessions).",
		}, []string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flint_bridge_refused_total",
			Help: "Requests refused, by reason: HostNotAllowed and OriginNotAllowed (403, DNS-rebinding protection), Full (503: every session busy at -max-sessions).",
		}, []string{"reason"}),
	}
	for _, r := range []string{"idle", "evicted"} {
		m.ended.WithLabelValues(r)
	}
	for _, r := range []string{hostcheck.ReasonHost, hostcheck.ReasonOrigin, "Full"} {
		m.refused.WithLabelValues(r)
	}
	m.reg.MustRegister(m.children, m.ended, m.refused)
	return m
}
