package autoscaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/stats"
)

// Platform is what the Loop needs from where replicas run; platform.Platform
// satisfies it.
type Platform interface {
	Agents() []*v1alpha1.Agent
	ReadyEndpoints(key platform.AgentKey) ([]platform.Endpoint, <-chan struct{})
	Replicas(key platform.AgentKey) int32
	SetScale(ctx context.Context, key platform.AgentKey, n int32) error
}

// agentLookup is the optional fast path to one agent's spec (platform.Platform
// has it); without it Poke scans Agents.
type agentLookup interface {
	Agent(key platform.AgentKey) (*v1alpha1.Agent, bool)
}

// Loop runs the autoscaler: a tick for every agent every LoopConfig.Tick, and
// Poke for the gateway's scale-from-zero.
type Loop struct {
	cfg      LoopConfig
	platform Platform
	demand   DemandSource
	log      *slog.Logger
	metrics  *metrics
	scraper  *scraper
	running  atomic.Bool
	workers  sync.WaitGroup // poke activations, waited for by Run

	mu     sync.Mutex
	agents map[platform.AgentKey]*agentState

	pokeMu     sync.Mutex
	pokes      map[platform.AgentKey]struct{}
	pokeSignal chan struct{}
}

// agentState is the Loop's memory of one agent.
type agentState struct {
	key platform.AgentKey
	// mu serialises the Decider between ticks and pokes, and covers the
	// platform calls that apply its decision, so a poke and a tick never
	// interleave a stale read of the replica count with a write.
	mu      sync.Mutex
	decider *Decider
	// snapshots is the previous Stats per replica; only the agent's tick,
	// and ticks are sequential, touches it.
	snapshots map[string]stats.Stats
	history   *history
	// activating and repoke coalesce pokes: one activation runs at a time
	// per agent and a poke during it asks for one more round.
	activating atomic.Bool
	repoke     atomic.Bool
	// tickMu serialises ticks of this agent: the regular tick and the
	// early ones a poke under pressure asks for (snapshots is theirs).
	tickMu sync.Mutex
	// lastEarly (unix nanos) rate-limits early ticks.
	lastEarly atomic.Int64
}

// NewLoop returns a Loop. d may be nil (no gateway demand); reg may be nil (no
// metrics are exported).
func NewLoop(cfg LoopConfig, p Platform, d DemandSource, log *slog.Logger, reg prometheus.Registerer) (*Loop, error) {
	if p == nil {
		return nil, errors.New("autoscaler: nil platform")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("autoscaler: %w", err)
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("autoscaler: %w", err)
	}
	return &Loop{
		cfg:        cfg,
		platform:   p,
		demand:     d,
		log:        log,
		metrics:    m,
		scraper:    newScraper(cfg.HTTPClient, cfg.ScrapeTimeout, cfg.ScrapeParallelism),
		agents:     map[platform.AgentKey]*agentState{},
		pokes:      map[platform.AgentKey]struct{}{},
		pokeSignal: make(chan struct{}, 1),
	}, nil
}

// Run ticks until ctx is done, then waits for work in progress and returns
// nil. The first tick runs at once, so every agent has a baseline snapshot
// by the time averages are needed.
func (l *Loop) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("autoscaler: loop is already running")
	}
	defer l.running.Store(false)
	defer l.workers.Wait()
	l.workers.Go(func() { l.servePokes(ctx) })

	ticker := time.NewTicker(l.cfg.Tick)
	defer ticker.Stop()
	for {
		l.tick(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// Decisions returns an agent's recent distinct decisions, oldest first.
func (l *Loop) Decisions(key platform.AgentKey) []Decision {
	l.mu.Lock()
	st, ok := l.agents[key]
	l.mu.Unlock()
	if !ok {
		return nil
	}
	return st.history.list()
}

// tick decides every agent, in parallel, and forgets agents that are gone.
func (l *Loop) tick(ctx context.Context) {
	agents := l.platform.Agents()
	present := make(map[platform.AgentKey]bool, len(agents))
	var wg sync.WaitGroup
	for _, a := range agents {
		key := platform.KeyOf(a)
		present[key] = true
		st := l.state(key, SpecOf(a))
		wg.Go(func() { l.tickAgent(ctx, st, SpecOf(a)) })
	}
	wg.Wait()

	l.mu.Lock()
	defer l.mu.Unlock()
	for key := range l.agents {
		if !present[key] {
			delete(l.agents, key)
			l.metrics.forget(key)
		}
	}
}

// state returns the agent's state, creating it on first sight.
func (l *Loop) state(key platform.AgentKey, spec Spec) *agentState {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.agents[key]
	if !ok {
		st = &agentState{
			key:       key,
			decider:   NewDecider(spec, l.cfg.Tuning),
			snapshots: map[string]stats.Stats{},
			history:   newHistory(l.cfg.DecisionHistory),
		}
		l.agents[key] = st
	}
	return st
}

// tickAgent scrapes one agent's replicas, decides and applies.
func (l *Loop) tickAgent(ctx context.Context, st *agentState, spec Spec) {
	st.tickMu.Lock()
	defer st.tickMu.Unlock()
	start := time.Now()
	eps, _ := l.platform.ReadyEndpoints(st.key)
	samples, snapshots, errs := l.scraper.scrapeAll(ctx, eps, st.snapshots)
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
	if ctx.Err() != nil {
		return // shutting down: a decision on cancelled scrapes would be wrong
	}

	st.mu.Lock()
	defer st.mu.Unlock()
	st.decider.SetSpec(spec)
	obs := Observation{Replicas: samples, Current: l.platform.Replicas(st.key)}
	if l.demand != nil {
		obs.Gateway = l.demand.Demand(st.key)
	}
	dec := st.decider.Decide(l.cfg.Now(), obs)
	l.apply(ctx, st, dec)
	l.metrics.decisionDuration.Observe(time.Since(start).Seconds())
}

// apply records a decision and, when it changes the replica count, asks the
// platform for it.
func (l *Loop) apply(ctx context.Context, st *agentState, dec Decision) {
	st.history.add(dec)
	l.metrics.observe(st.key, dec)
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
