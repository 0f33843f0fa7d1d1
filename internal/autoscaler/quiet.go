package autoscaler

import (
	"hash/fnv"
	"time"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/wire"
)

// Quiet agents: an agent nobody is calling costs no scrape.
//
// The gateways count every request they pass to an agent, and the last
// scrape of its replicas says whether anything reached them. When the
// gateways have seen no request, held nothing and had nothing in flight
// for the agent since its replicas were last scraped, and that scrape found
// every one of the same replicas idle (nothing in flight or queued over the
// whole span, no request admitted), another scrape could only find them
// idle again, unless traffic reached them without passing a gateway (the
// sidecar's bypass protection off, or a gateway the manager cannot read).
// So the tick feeds the Decider the idle samples a scrape would have
// returned, and scrapes for real only every IdleScrapeInterval, which
// bounds how late such traffic is seen. With the bypass protection on
// (LoopConfig.GatewaysSeeAll) there is no such traffic while every gateway
// is read, and a quiet agent is not scraped until a gateway counts a
// request for it. Knative decides on what the
// activator and a sample of pods report; the KEDA add-on only on what its
// interceptors count: both skip the per-pod work for a revision nobody
// calls.
//
// The decisions are those of a tick that scraped: an idle replica's sample
// is all zeros, whatever its span.

// quietState is what the worker remembers of the agent's last real scrape.
type quietState struct {
	// idle: that scrape found every replica idle (see idleScrape).
	idle bool
	// demand is the gateways' demand read just before that scrape.
	demand wire.Demand
	// scan is the tick of that scrape.
	scan int64
	// slot spreads the agents' forced scrapes over IdleScrapeInterval, so
	// quiet agents are not all scraped on the same tick.
	slot int64
	// skipped: the previous tick decided on idle samples; lastTick is when
	// that tick decided.
	skipped  bool
	lastTick time.Time
}

func newQuietState(key platform.AgentKey) quietState {
	h := fnv.New64a()
	h.Write([]byte(key.Namespace))
	h.Write([]byte{'/'})
	h.Write([]byte(key.Name))
	return quietState{slot: int64(h.Sum64() % (1 << 31))}
}

// idleEvery is IdleScrapeInterval in ticks, at least one.
func (c LoopConfig) idleEvery() int64 {
	return max(1, int64((c.IdleScrapeInterval+c.Tick-1)/c.Tick))
}

// scrapeKind is what a tick does with an agent's replicas.
type scrapeKind uint8

const (
	// scrapeNow: scrape, as on every tick of an agent with traffic.
	scrapeNow scrapeKind = iota
	// scrapeSkip: the agent is quiet; decide on idle samples.
	scrapeSkip
	// scrapeForced: the agent is quiet but its periodic scrape is due.
	// The connections are closed after it: the next one is an
	// IdleScrapeInterval away, and a kept connection costs the manager two
	// goroutines and 8 KiB of buffers per replica meanwhile.
	scrapeForced
)

// scrapeKindOf says whether the tick numbered scan may decide on idle
// samples for eps instead of scraping them: the gateways saw nothing for the
// agent since the last scrape, which found the same replicas idle, and the
// agent's periodic scrape is not due.
func (l *Loop) scrapeKindOf(st *agentState, eps []platform.Endpoint, gw wire.Demand, scan int64) scrapeKind {
	q := &st.quiet
	if l.demand == nil || !q.idle || len(eps) == 0 {
		return scrapeNow // without a gateway's counts, only a scrape tells
	}
	if gw.Held != 0 || gw.InFlight != 0 || !sameCounts(gw, q.demand) {
		return scrapeNow
	}
	if len(eps) != len(st.snapshots) {
		return scrapeNow
	}
	for _, ep := range eps {
		if _, ok := st.snapshots[replicaID(ep)]; !ok {
			return scrapeNow // a new replica: its first scrape is its baseline
		}
	}
	if l.cfg.GatewaysSeeAll && l.everyGatewayRead() {
		return scrapeSkip // nothing reaches the replicas but through a gateway
	}
	every := l.cfg.idleEvery()
	if scan-q.scan >= every || (scan+q.slot)%every == 0 {
		return scrapeForced
	}
	return scrapeSkip
}

// GatewayCoverage is implemented by a DemandSource that knows whether its
// latest reading of every gateway succeeded. A gateway it could not read
// may be passing requests the Loop does not see.
type GatewayCoverage interface {
	EveryGatewayRead() bool
}

// everyGatewayRead reports whether the demand source's latest reading
// covers every gateway (a source that cannot tell is taken at its word).
func (l *Loop) everyGatewayRead() bool {
	c, ok := l.demand.(GatewayCoverage)
	return !ok || c.EveryGatewayRead()
}

// scraped records a real scrape of the agent's replicas on tick scan, with
// the gateways' demand read before it.
func (q *quietState) scraped(samples []ReplicaSample, gw wire.Demand, scan int64) {
	q.idle = gw.Held == 0 && gw.InFlight == 0 && idleScrape(samples)
	q.demand, q.scan = gw, scan
}

// resumed adjusts the samples of the first scrape after skipped ticks when
// a request through a gateway ended the quiet. Their averages span every
// skipped tick, but the previous tick's reading showed the gateways no
// request yet, so the load they average arrived since that tick: spread
// over the whole span it would read as a fraction of what a scrape on every
// tick sees (1/30 after 60s quiet), and a step from idle would be met a
// tick late. They are taken over the time since the previous tick instead.
// A forced scrape (no request through a gateway) keeps the whole span:
// traffic that passes no gateway may have come at any time in it.
func (q *quietState) resumed(samples []ReplicaSample, gw wire.Demand, now time.Time) {
	if !q.skipped || q.lastTick.IsZero() || sameCounts(gw, q.demand) {
		return
	}
	since := now.Sub(q.lastTick)
	for i := range samples {
		s := &samples[i]
		if s.Known && s.Span > since && since > 0 {
			f := float64(s.Span) / float64(since)
			s.InFlight, s.Queued, s.Span = s.InFlight*f, s.Queued*f, since
		}
	}
}

// sameCounts reports whether the gateways counted no request and no refusal
// between two readings.
func sameCounts(a, b wire.Demand) bool {
	return a.RequestsTotal == b.RequestsTotal && a.RejectedTotal == b.RejectedTotal
}

// idleScrape reports whether every replica answered and was idle over the
// whole span since its previous scrape. A first scrape (no span) is not
// enough: its request count is unknown.
func idleScrape(samples []ReplicaSample) bool {
	if len(samples) == 0 {
		return false
	}
	for _, s := range samples {
		if !s.Known || s.Span <= 0 || s.InFlight != 0 || s.Queued != 0 || s.Requests != 0 {
			return false
		}
	}
	return true
}

// idleSamples are the samples a scrape of n idle replicas returns.
func idleSamples(n int, span time.Duration) []ReplicaSample {
	s := make([]ReplicaSample, n)
	for i := range s {
		s[i] = ReplicaSample{Known: true, Span: span}
	}
	return s
}
