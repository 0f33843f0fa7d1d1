package autoscaler

import (
	"time"

	"github.com/flint-dev/flint/internal/wire"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// at is epoch plus seconds.
func at(seconds float64) time.Time {
	return epoch.Add(time.Duration(seconds * float64(time.Second)))
}

// testSpec is the default Agent scaling spec with target 10, so the
// arithmetic in tests is easy to follow.
func testSpec() Spec {
	return Spec{MinReplicas: 0, MaxReplicas: 100, Target: 10, ScaleToZeroAfter: 30 * time.Second, StableWindow: 60 * time.Second}
}

// loaded returns n known replica samples with the given in-flight each.
func loaded(n int, inFlight float64) []ReplicaSample {
	s := make([]ReplicaSample, n)
	for i := range s {
		s[i] = ReplicaSample{InFlight: inFlight, Known: true, Requests: uint64(inFlight * 2), Completed: uint64(inFlight * 2), Span: 2 * time.Second}
	}
	return s
}

// feeder drives a Decider tick by tick like the Loop does, applying each
// decision to its replica count (every asked-for replica is ready at once
// unless ready is set).
type feeder struct {
	d       *Decider
	t       float64 // seconds since epoch
	tick    float64
	current int32
	ready   int32 // -1: ready == current
	gw      wire.Demand
}

func newFeeder(spec Spec, current int32) *feeder {
	return &feeder{d: NewDecider(spec, DefaultTuning()), tick: 2, current: current, ready: -1}
}

// step advances one tick with per-replica in-flight load perReplica and
// applies the decision.
func (f *feeder) step(perReplica float64) wire.Decision {
	return f.stepWith(func(ready int) []ReplicaSample { return loaded(ready, perReplica) })
}

// stepTotal spreads a total in-flight load over the ready replicas, capped
// at capPer each; the rest is held by the gateway.
func (f *feeder) stepTotal(total, capPer float64) wire.Decision {
	return f.stepWith(func(ready int) []ReplicaSample {
		per := min(total/float64(max(ready, 1)), capPer)
		if ready == 0 {
			per = 0
		}
		f.gw.Held = int64(total - per*float64(ready))
		if total > 0 {
			// Requests take 1s, so total concurrency is total req/s.
			f.gw.RequestsTotal += uint64(total * f.tick)
			f.gw.LastRequest = at(f.t + f.tick)
		}
		return loaded(ready, per)
	})
}

func (f *feeder) stepWith(samples func(ready int) []ReplicaSample) wire.Decision {
	f.t += f.tick
	ready := int(f.current)
	if f.ready >= 0 {
		ready = int(f.ready)
	}
	dec := f.d.Decide(at(f.t), Observation{Replicas: samples(ready), Gateway: f.gw, Current: f.current})
	f.current = dec.Desired
	return dec
}

// run steps n ticks at a constant per-replica load and returns the last
// decision.
func (f *feeder) run(n int, perReplica float64) wire.Decision {
	var dec wire.Decision
	for range n {
		dec = f.step(perReplica)
	}
	return dec
}
