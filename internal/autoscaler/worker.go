package autoscaler

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/wire"
)

// phase is where an agent's worker is, as Run sees it.
type phase uint8

const (
	// phaseNew: no worker yet (or Run stopped); the next tick starts one.
	phaseNew phase = iota
	// phaseRunning: a worker owns the agent's state.
	phaseRunning
	// phaseResting: no worker; the agent is at rest at zero and Run wakes
	// it when a tick finds it stirred or a poke arrives.
	phaseResting
)

// tickEvent is one tick as Run hands it to a worker.
type tickEvent struct {
	at   time.Time
	scan int64 // the tick's number, to count the ticks an agent at rest skips
	spec Spec
}

// agentState is the Loop's memory of one agent. Run creates it and sends
// ticks and pokes; whoever holds the agent (its worker while running, Run
// while it rests) owns the rest, and the hand-over happens through channels,
// so none of it needs a lock.
type agentState struct {
	key platform.AgentKey
	// history is read by Decisions from any goroutine (it locks itself).
	history *history
	// ticks and pokes are the worker's inbox, written only by Run. One
	// pending event of each kind is enough: pokes coalesce, and a tick the
	// worker has no room for is skipped as a busy time.Ticker skips.
	ticks chan tickEvent
	pokes chan struct{}

	// The worker's while it runs; Run's while the agent rests.
	decider *Decider
	// snapshots is the previous Stats per replica.
	snapshots map[string]wire.Stats
	// quiet is what the last scrape found, to skip scrapes of an agent
	// nobody calls (quiet.go); scan is the last tick the worker took.
	quiet quietState
	scan  int64
	spec  Spec
	// lastObserved is the decision the agent's gauges show (observed:
	// any), so a repeated one costs no metric update.
	lastObserved wire.Decision
	observed     bool
	// nextEarly is when a poke may next run an early tick: a quarter tick
	// after the last decision.
	nextEarly time.Time
	// restedAt, restScan and restDemand are the tick the agent went to rest
	// at and what the gateway reported then.
	restedAt   time.Time
	restScan   int64
	restDemand wire.Demand

	// Run's only.
	phase phase
	stop  chan struct{} // closed when the agent is deleted
	seen  int64         // the last tick that listed the agent
}

func newAgentState(key platform.AgentKey, d *Decider, historySize int) *agentState {
	return &agentState{
		key:       key,
		history:   newHistory(historySize),
		ticks:     make(chan tickEvent, 1),
		pokes:     make(chan struct{}, 1),
		decider:   d,
		snapshots: map[string]wire.Stats{},
		quiet:     newQuietState(key),
		spec:      d.Spec(),
	}
}

// work is an agent's worker: it decides on every tick and poke Run hands it,
// one at a time, until the agent is deleted, the Loop stops, or the agent
// comes to rest. It first records the ticks the agent skipped at rest.
func (l *Loop) work(ctx context.Context, st *agentState, stop <-chan struct{}, missed int64) {
	l.catchUp(st, missed)
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			l.metrics.forget(st.key)
			return
		case <-st.pokes:
			l.poked(ctx, st)
		case ev := <-st.ticks:
			st.scan = ev.scan
			dec, gw, decided := l.tickAgent(ctx, st, ev.spec)
			if !decided || !atRest(dec) || len(st.ticks) > 0 || len(st.pokes) > 0 {
				continue
			}
			st.restedAt, st.restScan, st.restDemand = ev.at, ev.scan, gw
			select {
			case l.rested <- st: // Run owns the state from here
			case <-ctx.Done():
			}
			return
		}
	}
}

// atRest reports whether a tick's decision leaves the agent with nothing to
// do until something changes: no replica asked for or ready, none wanted,
// idle, and no demand anywhere in the stable window. Every further tick
// would decide the same from the same observation, so the agent needs no
// worker; catchUp records those ticks when it wakes.
func atRest(d wire.Decision) bool {
	return d.Current == 0 && d.Desired == 0 && d.Ready == 0 && !d.Panic &&
		d.Reason == wire.ReasonScaleToZero && d.Demand == 0 && d.StableDemand == 0
}

// catchUp feeds the Decider the ticks the agent skipped at rest, as the
// ticks would have fed them: no replicas and the gateway's unchanged
// demand (a change would have woken it). Only the last stable window of
// them can still matter to an average, so at most that many are recorded.
// Its decisions are then exactly those of a worker that never rested.
func (l *Loop) catchUp(st *agentState, missed int64) {
	if missed <= 0 {
		return
	}
	relevant := int64(st.decider.Spec().StableWindow/l.cfg.Tick) + 2
	for k := max(1, missed-relevant+1); k <= missed; k++ {
		at := st.restedAt.Add(time.Duration(k) * l.cfg.Tick)
		l.record(st, st.decider.Decide(at, Observation{Gateway: st.restDemand}))
	}
}

// tickAgent scrapes one agent's replicas (or, for a quiet agent, takes
// them as idle: quiet.go), decides and applies. It returns the decision and
// the gateway demand it saw, or false when the Loop is stopping.
func (l *Loop) tickAgent(ctx context.Context, st *agentState, spec Spec) (wire.Decision, wire.Demand, bool) {
	start := time.Now()
	eps, _ := l.platform.ReadyEndpoints(st.key)
	// The gateways' demand is read before the scrape too: a request they
	// counted by then and no longer have in flight has reached the
	// replicas' counters by the time they are scraped (quiet.go).
	gw := l.gatewayDemand(st.key)
	var samples []ReplicaSample
	kind := l.scrapeKindOf(st, eps, gw, st.scan)
	skip := kind == scrapeSkip
	if skip {
		samples = idleSamples(len(eps), l.cfg.Tick)
		l.metrics.scrapesSkipped.Add(float64(len(eps)))
	} else {
		samples = l.scrape(ctx, st, eps, kind == scrapeForced)
	}
	if ctx.Err() != nil {
		return wire.Decision{}, wire.Demand{}, false // shutting down: a decision on cancelled scrapes would be wrong
	}
	now := l.cfg.Now()
	if !skip {
		st.quiet.resumed(samples, gw, now)
		st.quiet.scraped(samples, gw, st.scan)
		gw = l.gatewayDemand(st.key) // the freshest for the decision
	}
	st.quiet.skipped, st.quiet.lastTick = skip, now

	st.spec = spec
	st.decider.SetSpec(spec)
	obs := Observation{Replicas: samples, Current: l.platform.Replicas(st.key), Gateway: gw}
	dec := st.decider.Decide(now, obs)
	// No early tick within a quarter tick of any decision: the arrival
	// rate of a decision milliseconds after the last one is noise.
	st.nextEarly = now.Add(l.cfg.Tick / 4)
	l.apply(ctx, st, dec)
	l.metrics.decisionDuration.Observe(time.Since(start).Seconds())
	return dec, obs.Gateway, true
}

// gatewayDemand is the gateways' demand for the agent (zero without them).
func (l *Loop) gatewayDemand(key platform.AgentKey) wire.Demand {
	if l.demand == nil {
		return wire.Demand{}
	}
	return l.demand.Demand(key)
}

// scrape reads every replica's Stats and keeps the snapshots; closeConns
// closes the connections after the scrape.
func (l *Loop) scrape(ctx context.Context, st *agentState, eps []platform.Endpoint, closeConns bool) []ReplicaSample {
	samples, snapshots, errs := l.scraper.scrapeAll(ctx, eps, st.snapshots, closeConns)
	st.snapshots = snapshots
	if len(errs) > 0 {
		l.metrics.scrapeErrors.WithLabelValues(st.key.Namespace, st.key.Name).Add(float64(len(errs)))
		level := slog.LevelDebug
		if len(errs) == len(eps) {
			level = slog.LevelWarn // nothing known about this agent's load
		}
		l.log.Log(ctx, level, "autoscaler could not scrape replicas", "agent", st.key.String(),
			"failed", len(errs), "replicas", len(eps), "error", errors.Join(errs...))
	}
	return samples
}

// poked handles a poke: the gateway holds a request. With no replicas asked
// for, it asks for the first at once. Otherwise every replica is full, and
// it decides early, at most every quarter tick, so a step of load is met
// within the tick rather than at its end.
func (l *Loop) poked(ctx context.Context, st *agentState) {
	if ctx.Err() != nil {
		return
	}
	now := l.cfg.Now()
	if dec, ok := st.decider.Poke(now, l.platform.Replicas(st.key)); ok {
		l.metrics.pokes.WithLabelValues(st.key.Namespace, st.key.Name).Inc()
		l.apply(ctx, st, dec)
		return
	}
	if now.Before(st.nextEarly) {
		return
	}
	if a := l.platformAgent(st.key); a != nil {
		l.tickAgent(ctx, st, SpecOf(a))
	}
}

// record keeps a decision in the agent's history and metrics. The gauges
// are set only when a value they show changed: a steady or idle agent's
// decisions repeat every tick, and six labelled lookups per agent per tick
// are most of what deciding 2,000 idle agents costs.
func (l *Loop) record(st *agentState, dec wire.Decision) {
	st.history.add(dec)
	if st.observed && sameGauges(st.lastObserved, dec) {
		return
	}
	l.metrics.observe(st.key, dec)
	st.lastObserved, st.observed = dec, true
}

// sameGauges reports whether two decisions show the same on every gauge
// of metrics.observe.
func sameGauges(a, b wire.Decision) bool {
	return a.Desired == b.Desired && a.Current == b.Current && a.Ready == b.Ready && a.Panic == b.Panic &&
		a.StableDemand == b.StableDemand && a.PanicDemand == b.PanicDemand
}

// apply records a decision and, when it changes the replica count, asks the
// platform for it.
func (l *Loop) apply(ctx context.Context, st *agentState, dec wire.Decision) {
	l.record(st, dec)
	if dec.Desired == dec.Current && !l.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []any{"agent", st.key.String(), "from", dec.Current, "to", dec.Desired, "reason", dec.Reason,
		"panic", dec.Panic, "ready", dec.Ready, "demand", dec.Demand,
		"stableDemand", dec.StableDemand, "panicDemand", dec.PanicDemand}
	if dec.Desired == dec.Current {
		l.log.Debug("autoscaler decision", attrs...)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.ScaleTimeout)
	defer cancel()
	if err := l.platform.SetScale(ctx, st.key, dec.Desired); err != nil {
		l.metrics.scaleErrors.WithLabelValues(st.key.Namespace, st.key.Name).Inc()
		l.log.Warn("autoscaler could not scale agent", append(attrs, "error", err)...)
		return
	}
	l.log.Info("autoscaler scaled agent", attrs...)
}
