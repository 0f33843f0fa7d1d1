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
	"github.com/flint-dev/flint/internal/wire"
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
//
// Each agent that has anything to decide has one worker goroutine that owns
// its Decider and scrape snapshots and handles, one at a time, the ticks and
// pokes Run hands it (Knative runs one goroutine per revision the same way),
// so a tick and a poke never race. An agent at rest at zero (no replicas,
// nothing demanded for a stable window, idle) has no goroutine and no timer:
// each tick Run only compares what it remembers of the agent with the
// platform and the gateway, and starts a worker again when anything moved
// or a poke arrives (see worker.go).
type Loop struct {
	cfg      LoopConfig
	platform Platform
	demand   DemandSource
	log      *slog.Logger
	metrics  *metrics
	scraper  *scraper
	running  atomic.Bool
	workers  sync.WaitGroup // agent workers, waited for by Run

	// mu guards the agents map for Decisions; the map is written by Run
	// only.
	mu     sync.Mutex
	agents map[platform.AgentKey]*agentState

	pokeMu     sync.Mutex
	pokes      map[platform.AgentKey]struct{}
	pokeSignal chan struct{}

	// Owned by Run's goroutine.
	scans  int64            // ticks run so far
	rested chan *agentState // a worker that went to rest
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
		scraper:    newScraper(cfg.HTTPClient, cfg.ScrapeTimeout, cfg.ScrapeParallelism, cfg.Tick),
		agents:     map[platform.AgentKey]*agentState{},
		pokes:      map[platform.AgentKey]struct{}{},
		pokeSignal: make(chan struct{}, 1),
		rested:     make(chan *agentState),
	}, nil
}

// Run ticks until ctx is done, then waits for the agents' workers and
// returns nil. The first tick runs at once, so every agent has a baseline
// snapshot by the time averages are needed.
func (l *Loop) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("autoscaler: loop is already running")
	}
	defer l.running.Store(false)
	defer l.stopped()
	defer l.workers.Wait()

	ticker := time.NewTicker(l.cfg.Tick)
	defer ticker.Stop()
	l.tick(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			l.tick(ctx)
		case <-l.pokeSignal:
			l.servePokes(ctx)
		case st := <-l.rested:
			l.rest(ctx, st)
		}
	}
}

// Decisions returns an agent's recent distinct decisions, oldest first.
func (l *Loop) Decisions(key platform.AgentKey) []wire.Decision {
	l.mu.Lock()
	st, ok := l.agents[key]
	l.mu.Unlock()
	if !ok {
		return nil
	}
	return st.history.list()
}

// tick hands every agent's worker a tick, wakes agents at rest that need
// deciding again, and forgets agents that are gone.
func (l *Loop) tick(ctx context.Context) {
	l.scans++
	ev := tickEvent{at: l.cfg.Now(), scan: l.scans}
	for _, a := range l.platform.Agents() {
		key := platform.KeyOf(a)
		ev.spec = SpecOf(a)
		st := l.state(key, ev.spec)
		st.seen = l.scans
		switch st.phase {
		case phaseRunning:
			select {
			case st.ticks <- ev:
			default: // the worker is still busy with the previous one
			}
		case phaseResting:
			if l.stirred(st, ev.spec) {
				st.ticks <- ev // empty: nothing is sent to an agent at rest
				l.start(ctx, st, l.scans-1-st.restScan)
			}
		default:
			st.ticks <- ev // empty: a new state, or emptied by stopped
			l.start(ctx, st, 0)
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	for key, st := range l.agents {
		if st.seen == l.scans {
			continue
		}
		delete(l.agents, key)
		if st.phase == phaseRunning {
			close(st.stop) // the worker forgets the metrics as it leaves
		} else {
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
		st = newAgentState(key, NewDecider(spec, l.cfg.Tuning), l.cfg.DecisionHistory)
		l.agents[key] = st
	}
	return st
}

// start runs a worker for st. missed is the number of ticks it skipped
// while at rest, which the worker records before anything else.
func (l *Loop) start(ctx context.Context, st *agentState, missed int64) {
	st.phase = phaseRunning
	st.stop = make(chan struct{})
	stop := st.stop
	l.workers.Go(func() { l.work(ctx, st, stop, missed) })
}

// rest puts an agent whose worker has gone to rest at rest, unless a tick
// or poke reached it after it looked (then a new worker takes them) or the
// agent was deleted meanwhile.
func (l *Loop) rest(ctx context.Context, st *agentState) {
	l.mu.Lock()
	current := l.agents[st.key] == st
	l.mu.Unlock()
	switch {
	case !current:
		st.phase = phaseResting
		l.metrics.forget(st.key)
	case len(st.ticks) > 0 || len(st.pokes) > 0:
		l.start(ctx, st, 0)
	default:
		st.phase = phaseResting
	}
}

// stirred reports whether an agent at rest must be decided again: its spec
// changed, replicas were asked for or turned ready by someone else, or the
// gateway saw a request. None of these costs more than a map lookup.
func (l *Loop) stirred(st *agentState, spec Spec) bool {
	if spec != st.spec || l.platform.Replicas(st.key) != 0 {
		return true
	}
	if eps, _ := l.platform.ReadyEndpoints(st.key); len(eps) > 0 {
		return true
	}
	return l.demand != nil && !sameDemand(l.demand.Demand(st.key), st.restDemand)
}

// stopped runs when Run returns: every worker has left, so agents that were
// running start afresh on the next Run.
func (l *Loop) stopped() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, st := range l.agents {
		if st.phase == phaseRunning {
			st.phase = phaseNew
			select {
			case <-st.ticks: // the next Run's first tick replaces it
			default:
			}
		}
	}
}

func sameDemand(a, b wire.Demand) bool {
	return a.Held == b.Held && a.InFlight == b.InFlight && a.RequestsTotal == b.RequestsTotal &&
		a.RejectedTotal == b.RejectedTotal && a.LastRequest.Equal(b.LastRequest)
}
