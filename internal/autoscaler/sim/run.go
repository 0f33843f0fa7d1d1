package sim

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/flint-dev/flint/internal/autoscaler"
	"github.com/flint-dev/flint/internal/wire"
)

// DefaultResolution is the simulation step: fine enough against 2s ticks and
// second-long requests, coarse enough to replay an hour in well under a
// second.
const DefaultResolution = 10 * time.Millisecond

// Options change how a trace is replayed.
type Options struct {
	// Resolution is the simulation step (0: DefaultResolution).
	Resolution time.Duration
	// AdmittedOnly hides the gateway's held and refused requests from the
	// Decider, which then sees only what replicas admitted, as Knative's
	// autoscaler does. For comparison.
	AdmittedOnly bool
	// Tuning overrides the Decider's knobs (zero: defaults).
	Tuning autoscaler.Tuning
}

// Point is the state of the simulation at one tick, after its decision.
type Point struct {
	T time.Duration
	// Offered is the concurrency the load asks for: rate × service time.
	Offered float64
	// Arrivals and Rejected are requests per second over the last tick.
	Arrivals float64
	Rejected float64
	// Capacity is ready replicas × concurrency.
	Capacity float64
	InFlight int
	Queued   int
	Held     int
	Decision wire.Decision
	Ready    int32
}

// Result is a replayed trace.
type Result struct {
	Trace   *Trace
	Points  []Point
	Summary Summary
}

// epoch anchors the simulated clock; only differences matter.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Run replays a trace.
func Run(tr *Trace, opt Options) (*Result, error) {
	if err := tr.Validate(); err != nil {
		return nil, fmt.Errorf("trace %s: %w", tr.Name, err)
	}
	if opt.Resolution <= 0 {
		opt.Resolution = DefaultResolution
	}
	if opt.Tuning == (autoscaler.Tuning{}) {
		opt.Tuning = autoscaler.DefaultTuning()
	}
	if err := opt.Tuning.Validate(); err != nil {
		return nil, fmt.Errorf("tuning: %w", err)
	}
	s := newSimulation(tr, opt)
	s.run()
	return &Result{Trace: tr, Points: s.points, Summary: s.summarize()}, nil
}

// simulation is the state of one replay.
type simulation struct {
	tr      *Trace
	opt     Options
	rng     *rand.Rand
	decider *autoscaler.Decider
	fleet   fleet
	gw      gateway
	target  float64

	now        time.Duration
	nextArrive float64 // integrated rate at which the next request arrives
	integrated float64

	points    []Point
	decisions []wire.Decision
	marks     []markState
	replicaS  float64 // replica-seconds asked for: the cost
	peak      int32
}

func newSimulation(tr *Trace, opt Options) *simulation {
	spec := autoscaler.Spec{
		MinReplicas:      tr.MinReplicas,
		MaxReplicas:      tr.MaxReplicas,
		Target:           float64(tr.Target),
		ScaleToZeroAfter: tr.ScaleToZeroAfter,
		StableWindow:     tr.StableWindow,
	}
	if tr.Target == 0 {
		spec.Target = float64(max(1, tr.Concurrency*70/100))
	}
	rng := rand.New(rand.NewPCG(tr.Seed, tr.Seed^0x9e3779b97f4a7c15))
	s := &simulation{
		tr:      tr,
		opt:     opt,
		rng:     rng,
		decider: autoscaler.NewDecider(spec, opt.Tuning),
		fleet:   fleet{concurrency: int(tr.Concurrency), queue: tr.SidecarQueue, startup: tr.Startup},
		gw:      gateway{holdQueue: tr.HoldQueue, holdTimeout: tr.HoldTimeout},
		target:  spec.Target,
	}
	s.nextArrive = rng.ExpFloat64()
	for _, m := range tr.Marks {
		s.marks = append(s.marks, markState{Mark: m})
	}
	// Start where the trace's floor says, as a deployed agent would be.
	s.fleet.scale(0, tr.MinReplicas)
	for _, r := range s.fleet.replicas {
		r.readyAt = 0
	}
	return s
}

func (s *simulation) run() {
	dt := s.opt.Resolution
	ticksEvery := int64(s.tr.Tick / dt)
	s.tick() // the Loop ticks once as it starts
	for step := int64(1); ; step++ {
		s.now = time.Duration(step) * dt
		if s.now > s.tr.Duration {
			return
		}
		s.fleet.advance(s.now, dt)
		s.gw.dispatch(s.now, &s.fleet)
		s.arrivals(dt)
		if len(s.gw.held) > 0 {
			s.poke()
		}
		s.replicaS += float64(s.fleet.current()) * dt.Seconds()
		s.checkMarks()
		if ticksEvery > 0 && step%ticksEvery == 0 {
			s.tick()
		}
	}
}

// arrivals draws this step's requests from a Poisson process with the
// trace's time-varying rate: a request arrives each time the integrated rate
// passes an exponentially distributed threshold.
func (s *simulation) arrivals(dt time.Duration) {
	s.integrated += s.tr.Rate(s.now) * dt.Seconds()
	for s.integrated >= s.nextArrive {
		s.integrated -= s.nextArrive
		s.nextArrive = s.rng.ExpFloat64()
		service := time.Duration(s.rng.ExpFloat64() * float64(s.tr.ServiceTime))
		s.gw.arrive(s.now, max(service, time.Millisecond), &s.fleet)
	}
}

// poke is the gateway's Loop.Poke: a held request at zero asks for a replica
// at once.
func (s *simulation) poke() {
	if dec, ok := s.decider.Poke(s.clock(), s.fleet.current()); ok {
		s.apply(dec)
	}
}

// tick is one Loop tick: scrape, observe, decide, apply.
func (s *simulation) tick() {
	ready := s.fleet.readyReplicas(s.now)
	obs := autoscaler.Observation{Current: s.fleet.current(), Replicas: make([]autoscaler.ReplicaSample, len(ready))}
	for i, r := range ready {
		if s.tr.ScrapeFailure > 0 && s.rng.Float64() < s.tr.ScrapeFailure {
			continue // unknown; the previous snapshot stays
		}
		snap := r.stats
		obs.Replicas[i] = autoscaler.SampleFromStats(r.scraped, snap)
		r.scraped = &snap
	}
	obs.Gateway = wire.Demand{
		Held:          int64(len(s.gw.held)),
		RejectedTotal: s.gw.rejected,
		RequestsTotal: s.gw.requests,
	}
	if s.gw.seenRequest {
		obs.Gateway.LastRequest = s.clockAt(s.gw.lastRequest)
	}
	if s.opt.AdmittedOnly {
		obs.Gateway.Held, obs.Gateway.RejectedTotal = 0, 0
	}
	dec := s.decider.Decide(s.clock(), obs)
	s.apply(dec)

	inFlight, queued := s.fleet.totals()
	tick := s.tr.Tick.Seconds()
	s.points = append(s.points, Point{
		T:        s.now,
		Offered:  s.tr.Rate(s.now) * s.tr.ServiceTime.Seconds(),
		Arrivals: float64(s.gw.arrivedSinceSample) / tick,
		Rejected: float64(s.gw.rejectedSinceSample) / tick,
		Capacity: float64(len(s.fleet.readyReplicas(s.now))) * float64(s.tr.Concurrency),
		InFlight: inFlight,
		Queued:   queued,
		Held:     len(s.gw.held),
		Decision: dec,
		Ready:    int32(len(s.fleet.readyReplicas(s.now))),
	})
	s.gw.arrivedSinceSample, s.gw.rejectedSinceSample = 0, 0
	s.checkDesired(dec)
}

func (s *simulation) apply(dec wire.Decision) {
	s.decisions = append(s.decisions, dec)
	if dec.Desired != dec.Current {
		s.fleet.scale(s.now, dec.Desired)
		s.peak = max(s.peak, dec.Desired)
	}
}

func (s *simulation) clock() time.Time                  { return s.clockAt(s.now) }
func (s *simulation) clockAt(d time.Duration) time.Time { return epoch.Add(d) }
