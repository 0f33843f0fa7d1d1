package autoscaler

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/wire"
)

// metrics are the autoscaler's Prometheus series. Per-agent series carry the
// labels namespace and agent and are deleted when the agent goes.
type metrics struct {
	desired          *prometheus.GaugeVec
	actual           *prometheus.GaugeVec
	ready            *prometheus.GaugeVec
	panicMode        *prometheus.GaugeVec
	demand           *prometheus.GaugeVec
	decisionDuration prometheus.Histogram
	scrapeErrors     *prometheus.CounterVec
	scrapesSkipped   prometheus.Counter
	scaleErrors      *prometheus.CounterVec
	pokes            *prometheus.CounterVec
}

var agentLabels = []string{"namespace", "agent"}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		desired: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flint_autoscaler_desired_replicas",
			Help: "Replicas the autoscaler last asked for.",
		}, agentLabels),
		actual: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flint_autoscaler_actual_replicas",
			Help: "Replicas the platform had asked for (ready or not) when the autoscaler last decided.",
		}, agentLabels),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flint_autoscaler_ready_replicas",
			Help: "Ready replicas when the autoscaler last decided.",
		}, agentLabels),
		panicMode: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flint_autoscaler_panic_mode",
			Help: "1 while the agent is in panic mode, else 0.",
		}, agentLabels),
		demand: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flint_autoscaler_observed_concurrency",
			Help: "Observed demand (in-flight, queued, held and refused requests) averaged over the window.",
		}, append(agentLabels, "window")),
		decisionDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flint_autoscaler_decision_duration_seconds",
			Help:    "Time to scrape an agent's replicas, decide and apply the decision.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms .. 4s
		}),
		scrapeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flint_autoscaler_scrape_errors_total",
			Help: "Failed sidecar stats scrapes.",
		}, agentLabels),
		scrapesSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flint_autoscaler_scrapes_skipped_total",
			Help: "Replica scrapes skipped because the agent was quiet: idle at its last scrape and no request through a gateway since.",
		}),
		scaleErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flint_autoscaler_scale_errors_total",
			Help: "Failed scale requests to the platform.",
		}, agentLabels),
		pokes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flint_autoscaler_pokes_total",
			Help: "Scale-from-zero pokes that asked for replicas.",
		}, agentLabels),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.desired, m.actual, m.ready, m.panicMode, m.demand,
		m.decisionDuration, m.scrapeErrors, m.scrapesSkipped, m.scaleErrors, m.pokes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register autoscaler metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(key platform.AgentKey, d wire.Decision) {
	ns, name := key.Namespace, key.Name
	m.desired.WithLabelValues(ns, name).Set(float64(d.Desired))
	m.actual.WithLabelValues(ns, name).Set(float64(d.Current))
	m.ready.WithLabelValues(ns, name).Set(float64(d.Ready))
	m.panicMode.WithLabelValues(ns, name).Set(boolFloat(d.Panic))
	m.demand.WithLabelValues(ns, name, "stable").Set(d.StableDemand)
	m.demand.WithLabelValues(ns, name, "panic").Set(d.PanicDemand)
}

// forget deletes every series of an agent that no longer exists.
func (m *metrics) forget(key platform.AgentKey) {
	labels := prometheus.Labels{"namespace": key.Namespace, "agent": key.Name}
	for _, v := range []*prometheus.MetricVec{m.desired.MetricVec, m.actual.MetricVec, m.ready.MetricVec,
		m.panicMode.MetricVec, m.demand.MetricVec, m.scrapeErrors.MetricVec, m.scaleErrors.MetricVec, m.pokes.MetricVec} {
		v.DeletePartialMatch(labels)
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
