package gateway

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flint-dev/flint/internal/platform"
)

// metrics are the gateway's Prometheus series.
type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	coldStarts    *prometheus.CounterVec
	coldStartWait *prometheus.HistogramVec
	held          *prometheus.GaugeVec
	rejected      *prometheus.CounterVec
	retries       *prometheus.CounterVec
	retriesDenied *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	agent := []string{"namespace", "agent"}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flint_gateway_requests_total", Help: "Requests routed to agents, by response code.",
		}, append(agent, "code")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flint_gateway_request_duration_seconds", Help: "Time from receiving a request to the end of its response.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}, agent),
		coldStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flint_gateway_cold_starts_total", Help: "Requests that arrived while an agent had no ready replica.",
		}, agent),
		coldStartWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flint_gateway_cold_start_duration_seconds", Help: "Time requests were held waiting for a first ready replica.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}, agent),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flint_gateway_held_requests", Help: "Requests held because an agent is starting or every replica is full.",
		}, agent),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flint_gateway_rejected_total", Help: "Requests the gateway refused (hold queue full, no capacity, cold-start timeout).",
		}, append(agent, "reason")),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flint_gateway_retries_total", Help: "Attempts re-sent to another replica, by cause.",
		}, append(agent, "reason")),
		retriesDenied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flint_gateway_retries_denied_total", Help: "Attempts not re-sent because the retry budget was spent, by limit (request: retries of one request; agent: retrying requests of the agent).",
		}, append(agent, "limit")),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.coldStarts, m.coldStartWait, m.held, m.rejected, m.retries, m.retriesDenied)
	}
	return m
}

// agentMetrics caches one agent's series so the hot path does no label
// lookups except for the response code.
type agentMetrics struct {
	requests      *prometheus.CounterVec
	duration      prometheus.Observer
	coldStarts    prometheus.Counter
	coldStartWait prometheus.Observer
	held          prometheus.Gauge
	rejected      *prometheus.CounterVec
	retries       *prometheus.CounterVec
	retriesDenied *prometheus.CounterVec
	codes         codeCounters
}

// codeCounters caches the per-status children of the requests counter,
// indexed by status: a lookup is one atomic load, where a sync.Map hashed
// an interface on every request.
type codeCounters struct {
	byCode [600]atomic.Pointer[codeCounter]
}

type codeCounter struct{ prometheus.Counter }

// Range calls f with each status seen (int) and its counter
// (prometheus.Counter), like sync.Map's Range, until f returns false.
func (cc *codeCounters) Range(f func(code, counter any) bool) {
	for code := range cc.byCode {
		if c := cc.byCode[code].Load(); c != nil && !f(code, c.Counter) {
			return
		}
	}
}

func (m *metrics) forAgent(key platform.AgentKey) *agentMetrics {
	l := prometheus.Labels{"namespace": key.Namespace, "agent": key.Name}
	am := &agentMetrics{
		requests:      m.requests.MustCurryWith(l),
		duration:      m.duration.With(l),
		coldStarts:    m.coldStarts.With(l),
		coldStartWait: m.coldStartWait.With(l),
		held:          m.held.With(l),
		rejected:      m.rejected.MustCurryWith(l),
		retries:       m.retries.MustCurryWith(l),
		retriesDenied: m.retriesDenied.MustCurryWith(l),
	}
	return am
}

// countCode counts a response code, creating its series once.
func (am *agentMetrics) countCode(code int) {
	if code < 0 || code >= len(am.codes.byCode) {
		// Not an HTTP status; counted, but not cached (nor on the dashboard).
		am.requests.WithLabelValues(strconv.Itoa(code)).Inc()
		return
	}
	c := am.codes.byCode[code].Load()
	if c == nil {
		// Racing initialisations store the same child series: harmless.
		c = &codeCounter{am.requests.WithLabelValues(strconv.Itoa(code))}
		am.codes.byCode[code].Store(c)
	}
	c.Inc()
}
