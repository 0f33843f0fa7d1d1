package autoscaler

import (
	"math"
	"time"

	"github.com/flint-dev/flint/internal/wire"
)

// Decider turns observations of one agent into desired replica counts. It is
// not safe for concurrent use; it never reads the clock (callers pass now),
// so every rule can be tested with exact times.
type Decider struct {
	spec        Spec
	tuning      Tuning
	panicWindow time.Duration
	samples     *window
	// busy and completed window the replicas' in-flight average and
	// completion rate: their ratio is the service time (Little's law).
	busy, completed *window
	// burstPeaks remembers the panic-window desired count of each tick for
	// a stable window: scale-down never goes below the recent peak.
	burstPeaks *peakWindow

	started bool
	// lastObserved is the time of the previous Decide, to turn the
	// gateway's counters into rates.
	lastObserved  time.Time
	prevRequests  uint64
	prevRejected  uint64
	lastBacklog   time.Time // latest tick the gateway held or refused requests
	lastKnown     tickLoad  // replicas' load when some replica last answered
	lastKnownTime time.Time

	lastActive  time.Time // latest sign of any request
	lastScaleUp time.Time
	panicking   bool
	lastOver    time.Time // latest tick over the panic threshold
}

// NewDecider returns a Decider for spec. tuning must be valid (see
// Tuning.Validate).
func NewDecider(spec Spec, tuning Tuning) *Decider {
	d := &Decider{tuning: tuning}
	d.SetSpec(spec)
	return d
}

// Spec returns the spec in force.
func (d *Decider) Spec() Spec { return d.spec }

// SetSpec applies a changed spec. A new stable window restarts averaging:
// samples of a differently sized window cannot be reused.
func (d *Decider) SetSpec(spec Spec) {
	spec = spec.sanitized()
	if d.samples == nil || spec.StableWindow != d.spec.StableWindow {
		d.samples = newWindow(spec.StableWindow, d.tuning.BucketSize)
		d.busy = newWindow(spec.StableWindow, d.tuning.BucketSize)
		d.completed = newWindow(spec.StableWindow, d.tuning.BucketSize)
		d.burstPeaks = newPeakWindow(spec.StableWindow)
		d.panicWindow = d.tuning.panicWindow(spec.StableWindow)
	}
	d.spec = spec
}

// begin initialises the state on the first call. A Decider that starts with
// replicas running (the autoscaler restarted) has lost their history, so it
// behaves as if it had just scaled up and seen traffic: no scale-down for a
// stable window and no scale to zero for ScaleToZeroAfter.
func (d *Decider) begin(now time.Time, current int32) {
	if d.started {
		return
	}
	d.started = true
	if current > 0 {
		d.lastActive, d.lastScaleUp = now, now
	}
}

// Poke is the fast path from zero: a request is being held for an agent with
// no replicas. It returns the decision to apply at once, or false when the
// agent already has replicas asked for (they will serve the request).
func (d *Decider) Poke(now time.Time, current int32) (wire.Decision, bool) {
	d.begin(now, current)
	d.lastActive = later(d.lastActive, now)
	if current > 0 {
		return wire.Decision{}, false
	}
	d.lastScaleUp = now
	desired := min(max(1, d.spec.MinReplicas), d.spec.MaxReplicas)
	return wire.Decision{Time: now, Desired: desired, Current: current, Reason: wire.ReasonPoke}, true
}

// Decide records one tick's observation and returns the desired replicas.
// It assumes the decision is applied: a scale-up starts the hysteresis
// clock.
func (d *Decider) Decide(now time.Time, obs Observation) wire.Decision {
	d.begin(now, obs.Current)
	dec := wire.Decision{Time: now, Current: obs.Current, Ready: int32(len(obs.Replicas))}

	load, unknown, known := replicaLoad(obs.Replicas)
	dec.Unknown = int32(unknown)
	if known {
		d.lastKnown, d.lastKnownTime = load, now
	} else if !d.lastKnownTime.IsZero() && now.Sub(d.lastKnownTime) < d.spec.StableWindow {
		// Nobody answered: carry the last known load rather than read
		// silence as idleness.
		load, known = d.lastKnown, true
	}
	d.gatewayCounters(now, obs.Gateway, &load)
	load.service = d.serviceTime(now, load)
	if load.held > 0 || load.refused > 0 {
		d.lastBacklog = now
	}
	load.backlog = d.shortOfCapacity(now)
	demand := load.concurrency()
	dec.Demand = demand

	if demand > 0 || load.arrived > 0 || load.held > 0 || admittedAny(obs.Replicas) {
		d.lastActive = now
	}
	if last := obs.Gateway.LastRequest; !last.After(now) {
		d.lastActive = later(d.lastActive, last)
	}

	if !known && demand == 0 {
		dec.Desired, dec.Reason = d.clamp(obs.Current, wire.ReasonNoData)
		dec.Panic = d.panicking
		return dec
	}
	d.samples.record(now, demand)
	dec.StableDemand, _ = d.samples.average(now, d.spec.StableWindow)
	dec.PanicDemand, _ = d.samples.average(now, d.panicWindow)

	desired, reason := d.desired(now, dec, obs.Current)
	dec.Desired, dec.Reason = d.clamp(desired, reason)
	dec.Panic = d.panicking
	if dec.Desired > obs.Current {
		d.lastScaleUp = now
	}
	return dec
}

// serviceTime is the mean time a request holds a slot: the replicas'
// average in-flight count ÷ their completion rate (Little's law), over the
// stable window, or zero before any replica has completed a request.
// Completions rather than admissions, because on a step the slots fill and
// admissions run ahead of completions; the stable window rather than the
// tick, because a tick's few completions are noisy and the service time
// does not jump with the load.
func (d *Decider) serviceTime(now time.Time, load tickLoad) time.Duration {
	if load.completed > 0 {
		d.busy.record(now, load.busy)
		d.completed.record(now, load.completed)
	}
	busy, _ := d.busy.average(now, d.spec.StableWindow)
	completed, ok := d.completed.average(now, d.spec.StableWindow)
	if !ok || completed <= 0 || busy <= 0 {
		return 0
	}
	return time.Duration(busy / completed * float64(time.Second))
}

// gatewayCounters fills in the gateway's side of a tick: requests that
// arrived and were refused since the previous tick, and those held now.
func (d *Decider) gatewayCounters(now time.Time, gw wire.Demand, load *tickLoad) {
	load.held = gw.Held
	if !d.lastObserved.IsZero() {
		load.arrived = counterDelta(gw.RequestsTotal, d.prevRequests)
		load.refused = counterDelta(gw.RejectedTotal, d.prevRejected)
		load.dt = now.Sub(d.lastObserved)
	}
	d.lastObserved, d.prevRequests, d.prevRejected = now, gw.RequestsTotal, gw.RejectedTotal
}

// desired applies the windows, panic mode, rate limits and hysteresis, in
// that order; clamping to [min, max] comes last, in Decide.
func (d *Decider) desired(now time.Time, dec wire.Decision, current int32) (int32, wire.Reason) {
	stable := d.replicasFor(dec.StableDemand)
	burst := d.replicasFor(dec.PanicDemand)
	d.burstPeaks.record(now, burst)
	readyPods := max(dec.Ready, 1)

	// Panic: the short window asks for at least threshold × what is ready.
	over := float64(burst)/float64(readyPods) >= d.tuning.PanicThresholdPercent/100
	switch {
	case over:
		d.panicking, d.lastOver = true, now
	case d.panicking && now.Sub(d.lastOver) >= d.spec.StableWindow:
		d.panicking = false
	}
	idle := now.Sub(d.lastActive) >= d.spec.ScaleToZeroAfter

	var desired int32
	var reason wire.Reason
	switch {
	case d.panicking:
		// Panic never scales down. The panic window raises the count
		// while the surge is on (over the threshold), while the
		// gateway shows the replicas short of it (held or refused
		// requests), or by more than noise. Once the replicas carry
		// the load, a rise of a replica or two is the load's own
		// noise: a Poisson load runs 5-15% over its mean over some 6s
		// windows, and following each such rise ratcheted the 10x step
		// to 17 replicas where 15 carry it (the highest window's count,
		// kept for a stable window). The stable window still raises it.
		desired, reason = max(stable, current), wire.ReasonPanic
		if over || d.shortOfCapacity(now) || risesBeyondNoise(burst, current) {
			desired = max(desired, burst)
		}
	case idle:
		desired, reason = 0, wire.ReasonScaleToZero
	default:
		desired, reason = stable, wire.ReasonStable
	}

	// Rate limits bound the step, never force one: both limits admit
	// current.
	upLimit := max(current, ceilInt32(d.tuning.MaxScaleUpRate*float64(readyPods)))
	downLimit := min(current, int32(math.Floor(float64(current)/d.tuning.MaxScaleDownRate)))
	if desired > upLimit {
		desired, reason = upLimit, wire.ReasonRateLimited
	}
	if desired < downLimit {
		desired = downLimit
		if reason != wire.ReasonScaleToZero {
			reason = wire.ReasonRateLimited
		}
	}
	if idle {
		return desired, reason
	}
	// Hysteresis: what the load needed within the last stable window
	// may be needed again. No scale-down at all within a stable window of
	// a scale-up; otherwise none below the highest count a panic window
	// asked for. Without the second rule a bursty agent flaps: panic
	// scales it up, the stable average (which dilutes the bursts) scales
	// it down, the next burst panics again.
	if desired < current {
		floor := d.burstPeaks.max(now)
		if now.Sub(d.lastScaleUp) < d.spec.StableWindow {
			floor = current
		}
		if floor > desired {
			desired, reason = min(floor, current), wire.ReasonHeldByStableWindow
		}
	}
	// Requests arrived within ScaleToZeroAfter: keep one replica warm.
	if desired < 1 {
		desired, reason = 1, wire.ReasonHeldRecentTraffic
	}
	return desired, reason
}

// panicRiseBeyondNoise is how far above current the panic window must ask
// to raise the count on its own while panicking (see risesBeyondNoise).
// The panic window of a steady Poisson load of 100 concurrent requests
// varies by about 5% (one standard deviation): 20% is four of them. And it
// stays below the 1/0.7 = 43% (at the default target, 70% of concurrency)
// a saturated agent's panic count rises per tick when nothing tells the
// Decider that requests wait (no gateway), so such an agent still grows
// every tick.
const panicRiseBeyondNoise = 0.2

// shortOfCapacity reports whether the gateway held or refused a request
// within the last panic window: the replicas did not carry the load.
func (d *Decider) shortOfCapacity(now time.Time) bool {
	return !d.lastBacklog.IsZero() && now.Sub(d.lastBacklog) < d.panicWindow
}

// risesBeyondNoise reports whether the panic window's count exceeds current
// by more than the noise of a steady load (panicRiseBeyondNoise).
func risesBeyondNoise(burst, current int32) bool {
	return float64(burst) >= float64(current)*(1+panicRiseBeyondNoise)-1e-9
}

// replicasFor is ceil(concurrency / target). The tiny slack keeps float noise
// (14.000000001 / 7) from asking for a replica nobody needs.
func (d *Decider) replicasFor(concurrency float64) int32 {
	return ceilInt32(concurrency/d.spec.Target - 1e-9)
}

func (d *Decider) clamp(n int32, reason wire.Reason) (int32, wire.Reason) {
	switch {
	case n < d.spec.MinReplicas:
		return d.spec.MinReplicas, wire.ReasonClampedMin
	case n > d.spec.MaxReplicas:
		return d.spec.MaxReplicas, wire.ReasonClampedMax
	}
	return n, reason
}

func ceilInt32(f float64) int32 {
	if f <= 0 {
		return 0
	}
	if f >= math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(math.Ceil(f))
}

// admittedAny reports whether any replica admitted a request since its
// previous scrape: traffic, even if it finished between two scrapes.
func admittedAny(samples []ReplicaSample) bool {
	for _, s := range samples {
		if s.Known && s.Requests > 0 {
			return true
		}
	}
	return false
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
