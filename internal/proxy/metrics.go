package proxy

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flint-dev/flint/internal/wire"
)

// durationBuckets reach minutes: agent calls that wait on a model are slow,
// and a histogram whose top bucket is 10s hides exactly those.
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// metrics is the sidecar's Prometheus view, in a private registry so that
// several sidecars in one process (local mode, tests) never collide.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	// byCode caches the per-status children: CounterVec.WithLabelValues
	// hashes and locks, which the hot path need not pay after the first
	// request with a given status.
	byCode   [600]atomic.Pointer[counter]
	duration prometheus.Histogram
	rejects  map[string]prometheus.Counter
	conns    connCounters
}

// connCounters are the serving port's connections by transport.
type connCounters struct{ plain, tls prometheus.Counter }

type counter struct{ prometheus.Counter }

func newMetrics(s *Sidecar) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flint_sidecar_requests_total",
		Help: "Requests answered on the serving port, by HTTP status (499: the client left first).",
	}, []string{"code"})
	m.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "flint_sidecar_request_duration_seconds",
		Help:    "Time from a request's arrival to the end of its response, queueing included.",
		Buckets: durationBuckets,
	})
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flint_sidecar_rejected_total",
		Help: "Requests refused with 503 before reaching the agent, by reason (capacity, not-ready, shutdown).",
	}, []string{"reason"})
	conns := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flint_sidecar_connections_total",
		Help: "Connections accepted on the serving port, by transport (plain or tls: what the client's first bytes started).",
	}, []string{"transport"})
	m.conns = connCounters{plain: conns.WithLabelValues("plain"), tls: conns.WithLabelValues("tls")}
	m.rejects = map[string]prometheus.Counter{}
	for _, r := range []string{wire.RejectCapacity, wire.RejectNotReady, wire.RejectShutdown} {
		m.rejects[r] = rejected.WithLabelValues(r)
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	count := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	boolean := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	m.reg.MustRegister(
		m.requests, m.duration, rejected, conns,
		gauge("flint_sidecar_in_flight_requests", "Requests being served by the agent now.", func() float64 {
			n, _ := s.acc.counts()
			return float64(n)
		}),
		gauge("flint_sidecar_queued_requests", "Requests waiting for a slot or for the agent to be ready.", func() float64 {
			_, n := s.acc.counts()
			return float64(n)
		}),
		count("flint_sidecar_in_flight_seconds_total",
			"Integral of in-flight requests over time; its rate is the time-weighted average concurrency.",
			func() float64 { return s.acc.snapshot().InFlightSeconds }),
		count("flint_sidecar_queued_seconds_total",
			"Integral of queued requests over time; its rate is the time-weighted average queue length.",
			func() float64 { return s.acc.snapshot().QueuedSeconds }),
		gauge("flint_sidecar_concurrency_limit", "The replica's concurrency cap (0 = unlimited).",
			func() float64 { return float64(s.cfg.Concurrency) }),
		gauge("flint_sidecar_ready", "1 when the replica accepts new requests (agent answering, not draining).",
			func() float64 { return boolean(s.Ready()) }),
		gauge("flint_sidecar_draining", "1 once the replica is shutting down.",
			func() float64 { return boolean(s.draining.Load()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) observe(code int, d time.Duration) {
	m.duration.Observe(d.Seconds())
	if code < 0 || code >= len(m.byCode) {
		m.requests.WithLabelValues(strconv.Itoa(code)).Inc()
		return
	}
	c := m.byCode[code].Load()
	if c == nil {
		c = &counter{m.requests.WithLabelValues(strconv.Itoa(code))}
		m.byCode[code].Store(c) // a racing store holds the same child: harmless
	}
	c.Inc()
}

func (m *metrics) rejected(reason string) {
	if c, ok := m.rejects[reason]; ok {
		c.Inc()
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
