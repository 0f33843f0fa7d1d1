package autoscaler

import (
	"math"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/wire"
)

func TestDecideStableFollowsAverageOverTarget(t *testing.T) {
	tests := []struct {
		name       string
		replicas   int32
		perReplica float64
		want       int32
	}{
		{"exactly at target", 3, 10, 3},
		{"a little over target needs one more", 3, 10.5, 4},
		{"half loaded halves (after the stable window)", 4, 5, 2},
		{"float noise does not add a replica", 7, 10.000000000001, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFeeder(testSpec(), tt.replicas)
			f.t = 100 // the restart hold-off ends within the run
			// Feed load as total concurrency so it stays constant as
			// the replica count changes.
			total := float64(tt.replicas) * tt.perReplica
			var dec wire.Decision
			for range 60 {
				dec = f.stepWith(func(ready int) []ReplicaSample {
					return loaded(ready, total/float64(ready))
				})
			}
			if dec.Desired != tt.want || dec.Reason != wire.ReasonStable {
				t.Errorf("desired %d (%s), want %d (stable)", dec.Desired, dec.Reason, tt.want)
			}
		})
	}
}

func TestDecidePanicModeEntersAndLeaves(t *testing.T) {
	f := newFeeder(testSpec(), 2)
	f.t = 100
	f.run(40, 10) // steady at target, past the restart hold-off
	// overThreshold recomputes the rule from a decision's own numbers.
	overThreshold := func(d wire.Decision) bool {
		return math.Ceil(d.PanicDemand/10)/float64(max(d.Ready, 1)) >= 2
	}
	// A 5x step: the panic window (6s) sees it at once.
	dec := f.stepTotal(100, 10)
	if !dec.Panic || dec.Reason != wire.ReasonPanic || !overThreshold(dec) {
		t.Fatalf("after a 5x step: panic %v reason %s, want panic", dec.Panic, dec.Reason)
	}
	lastOver, peak := f.t, dec.Desired
	for range 5 {
		if dec = f.stepTotal(100, 10); overThreshold(dec) {
			lastOver = f.t
		}
		peak = max(peak, dec.Desired)
	}
	if peak < 10 {
		t.Fatalf("peak desired %d during a 100-concurrency step, want >= 10", peak)
	}
	// Load drops back: panic holds the count for a full stable window
	// after the last tick over the threshold.
	for f.t < lastOver+58 {
		dec = f.stepTotal(20, 10)
		if !dec.Panic {
			t.Fatalf("left panic %vs after the last over-threshold tick; want a full stable window", f.t-lastOver)
		}
		if dec.Desired < peak {
			t.Fatalf("t=%vs: desired %d while panicking, want no scale-down below %d", f.t, dec.Desired, peak)
		}
	}
	for f.t < lastOver+62 {
		dec = f.stepTotal(20, 10)
	}
	if dec.Panic {
		t.Errorf("still panicking a stable window after the last over-threshold tick")
	}
}

func TestDecideNeverScalesDownWhilePanicking(t *testing.T) {
	// Ready lags asked-for replicas (they are starting), so panic-window
	// demand stays far above ready capacity while the stable average is low.
	f := newFeeder(testSpec(), 20)
	f.ready = 1
	f.t = 100
	for range 10 {
		dec := f.step(30) // 1 ready replica with 30 → burst 3 ≥ 2×1
		if !dec.Panic || dec.Desired < 20 {
			t.Fatalf("desired %d panic %v, want >= 20 in panic", dec.Desired, dec.Panic)
		}
	}
}

func TestDecideRateLimits(t *testing.T) {
	tuning := DefaultTuning()
	tuning.MaxScaleUpRate = 3
	d := NewDecider(testSpec(), tuning)
	dec := d.Decide(at(0), Observation{Replicas: loaded(2, 10), Gateway: wire.Demand{Held: 980}, Current: 2})
	if dec.Desired != 6 || dec.Reason != wire.ReasonRateLimited {
		t.Errorf("scale-up: desired %d (%s), want 6 (rate-limited: 3 × 2 ready)", dec.Desired, dec.Reason)
	}

	// Scale-down at most halves per tick: 16 → 8 → 4 → 2 → 1.
	f := newFeeder(testSpec(), 16)
	f.t = 1000
	f.d.Decide(at(f.t), Observation{Replicas: loaded(16, 10), Current: 16})
	f.d.lastScaleUp = time.Time{} // past the hysteresis
	f.t += 61
	var got []int32
	for range 4 {
		dec := f.stepTotal(1, 10)
		got = append(got, dec.Desired)
	}
	// The stable average still remembers the old load for a while, so check
	// the bound, not an exact path.
	prev := int32(16)
	for _, n := range got {
		if n < prev/2 {
			t.Errorf("scale-down path %v: %d is less than half of %d", got, n, prev)
		}
		prev = n
	}
}

func TestDecideClampsToMinAndMax(t *testing.T) {
	spec := testSpec()
	spec.MinReplicas, spec.MaxReplicas = 2, 5
	d := NewDecider(spec, DefaultTuning())
	dec := d.Decide(at(0), Observation{Replicas: loaded(5, 10), Gateway: wire.Demand{Held: 500}, Current: 5})
	if dec.Desired != 5 || dec.Reason != wire.ReasonClampedMax {
		t.Errorf("desired %d (%s), want 5 (clamped-max)", dec.Desired, dec.Reason)
	}
	d = NewDecider(spec, DefaultTuning())
	dec = d.Decide(at(0), Observation{Current: 0})
	if dec.Desired != 2 || dec.Reason != wire.ReasonClampedMin {
		t.Errorf("desired %d (%s), want 2 (clamped-min)", dec.Desired, dec.Reason)
	}
}

func TestDecideHoldsScaleDownForAStableWindowAfterScaleUp(t *testing.T) {
	f := newFeeder(testSpec(), 1)
	f.d.Decide(at(0), Observation{Replicas: loaded(1, 0), Current: 1})
	f.d.lastScaleUp, f.d.lastActive = time.Time{}, time.Time{}
	f.t = 198
	f.step(0) // a quiet tick, so the step's arrival rate spans one tick
	f.d.lastScaleUp, f.d.lastActive = time.Time{}, time.Time{}
	dec := f.stepTotal(50, 10) // scale up at t=202
	if dec.Desired <= 1 {
		t.Fatalf("desired %d after a step to 50, want a scale-up", dec.Desired)
	}
	scaledUp, up := f.t, dec.Desired
	// Load vanishes but requests keep trickling in: no scale-down until
	// a stable window after the scale-up.
	for f.t < scaledUp+58 {
		dec = f.stepTotal(0.1, 10)
		if dec.Desired < up {
			t.Fatalf("t=+%vs: scaled down to %d within the stable window of a scale-up to %d (%s)", f.t-scaledUp, dec.Desired, up, dec.Reason)
		}
	}
	if dec.Reason != wire.ReasonHeldByStableWindow && dec.Reason != wire.ReasonPanic {
		t.Errorf("reason %s, want held-after-scale-up (or panic)", dec.Reason)
	}
	for range 40 {
		dec = f.stepTotal(0.1, 10)
	}
	if dec.Desired != 1 {
		t.Errorf("desired %d (%s) long after load dropped to 0.1, want 1", dec.Desired, dec.Reason)
	}
}

func TestDecideScaleToZero(t *testing.T) {
	spec := testSpec()
	d := NewDecider(spec, DefaultTuning())
	d.Decide(at(0), Observation{Replicas: loaded(1, 5), Current: 1, Gateway: wire.Demand{LastRequest: at(0)}})
	tests := []struct {
		name   string
		t      float64
		obs    Observation
		want   int32
		reason wire.Reason
	}{
		{"the stable window remembers load", 20, Observation{Replicas: loaded(1, 0), Current: 1, Gateway: wire.Demand{LastRequest: at(0)}}, 1, wire.ReasonStable},
		{"idle but a request is held", 31, Observation{Replicas: loaded(1, 0), Current: 1, Gateway: wire.Demand{Held: 1, LastRequest: at(0)}}, 1, wire.ReasonStable},
		{"a long request is still in flight", 62, Observation{Replicas: loaded(1, 0.01), Current: 1, Gateway: wire.Demand{LastRequest: at(0)}}, 1, wire.ReasonStable},
		{"idle for scaleToZeroAfter", 93, Observation{Replicas: loaded(1, 0), Current: 1, Gateway: wire.Demand{LastRequest: at(0)}}, 0, wire.ReasonScaleToZero},
		{"stays at zero", 95, Observation{Current: 0, Gateway: wire.Demand{LastRequest: at(0)}}, 0, wire.ReasonScaleToZero},
	}
	for _, tt := range tests {
		dec := d.Decide(at(tt.t), tt.obs)
		if dec.Desired != tt.want || dec.Reason != tt.reason {
			t.Errorf("%s: desired %d (%s), want %d (%s)", tt.name, dec.Desired, dec.Reason, tt.want, tt.reason)
		}
	}
}

func TestDecideKeepsOneReplicaWhileTrafficIsRecent(t *testing.T) {
	// The windows hold only zeros, but a request arrived 10s ago (and
	// finished between scrapes): keep one replica warm.
	d := NewDecider(testSpec(), DefaultTuning())
	d.Decide(at(0), Observation{Replicas: loaded(1, 0), Current: 1})
	d.lastScaleUp = time.Time{}
	var dec wire.Decision
	for s := 2.0; s <= 80; s += 2 {
		dec = d.Decide(at(s), Observation{Replicas: loaded(1, 0), Current: 1, Gateway: wire.Demand{LastRequest: at(70)}})
	}
	if dec.Desired != 1 || dec.Reason != wire.ReasonHeldRecentTraffic {
		t.Errorf("desired %d (%s), want 1 (held-recent-traffic)", dec.Desired, dec.Reason)
	}
}

func TestDecideScaleToZeroIgnoresStaleWindowAndHysteresis(t *testing.T) {
	// The stable average still remembers load and the last scale-up is
	// recent, but nothing arrived for scaleToZeroAfter: go to zero.
	spec := testSpec()
	spec.StableWindow = 5 * time.Minute
	f := newFeeder(spec, 1)
	f.d.Decide(at(0), Observation{Replicas: loaded(1, 8), Current: 1, Gateway: wire.Demand{LastRequest: at(0)}})
	var dec wire.Decision
	for f.t < 40 {
		dec = f.stepWith(func(ready int) []ReplicaSample { return loaded(ready, 0) })
	}
	if dec.Desired != 0 || dec.Reason != wire.ReasonScaleToZero {
		t.Errorf("desired %d (%s) after 40s idle, want 0 (scale-to-zero)", dec.Desired, dec.Reason)
	}
}

func TestDecideScaleToZeroRespectsMinReplicas(t *testing.T) {
	spec := testSpec()
	spec.MinReplicas = 1
	d := NewDecider(spec, DefaultTuning())
	dec := d.Decide(at(100), Observation{Replicas: loaded(1, 0), Current: 1})
	d.lastActive = time.Time{}
	dec = d.Decide(at(200), Observation{Replicas: loaded(1, 0), Current: 1})
	if dec.Desired != 1 || dec.Reason != wire.ReasonClampedMin {
		t.Errorf("desired %d (%s), want 1 (clamped-min)", dec.Desired, dec.Reason)
	}
}

func TestPoke(t *testing.T) {
	tests := []struct {
		name     string
		min, max int32
		current  int32
		want     int32
		ok       bool
	}{
		{"zero to one", 0, 10, 0, 1, true},
		{"already scaling", 0, 10, 2, 0, false},
		{"min above one", 0, 10, 0, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := testSpec()
			spec.MinReplicas, spec.MaxReplicas = tt.min, tt.max
			d := NewDecider(spec, DefaultTuning())
			dec, ok := d.Poke(at(0), tt.current)
			if ok != tt.ok || dec.Desired != tt.want || (ok && dec.Reason != wire.ReasonPoke) {
				t.Errorf("Poke = %d (%s), %v; want %d, %v", dec.Desired, dec.Reason, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestPokeThenTickKeepsTheReplica(t *testing.T) {
	d := NewDecider(testSpec(), DefaultTuning())
	d.Decide(at(0), Observation{})
	if dec, ok := d.Poke(at(100), 0); !ok || dec.Desired != 1 {
		t.Fatalf("Poke = %d, %v; want 1", dec.Desired, ok)
	}
	// The replica is still starting and the request is held.
	dec := d.Decide(at(101), Observation{Current: 1, Gateway: wire.Demand{Held: 1, LastRequest: at(100)}})
	if dec.Desired != 1 {
		t.Errorf("tick after poke: desired %d (%s), want 1", dec.Desired, dec.Reason)
	}
}

func TestDecideAfterRestartHoldsRunningReplicas(t *testing.T) {
	d := NewDecider(testSpec(), DefaultTuning())
	dec := d.Decide(at(0), Observation{Replicas: loaded(5, 0), Current: 5})
	if dec.Desired != 5 || dec.Reason != wire.ReasonHeldByStableWindow {
		t.Errorf("first decision with 5 idle replicas: %d (%s), want 5 held", dec.Desired, dec.Reason)
	}
}

func TestSetSpecChangesBounds(t *testing.T) {
	d := NewDecider(testSpec(), DefaultTuning())
	d.Decide(at(0), Observation{Replicas: loaded(4, 10), Current: 4})
	spec := testSpec()
	spec.MaxReplicas = 2
	d.SetSpec(spec)
	if dec := d.Decide(at(2), Observation{Replicas: loaded(4, 10), Current: 4}); dec.Desired != 2 || dec.Reason != wire.ReasonClampedMax {
		t.Errorf("after lowering max: %d (%s), want 2 (clamped-max)", dec.Desired, dec.Reason)
	}
}

func TestPanicWindowIsTenPercentRoundedToBuckets(t *testing.T) {
	tu := DefaultTuning()
	for stable, want := range map[time.Duration]time.Duration{
		60 * time.Second: 6 * time.Second,
		6 * time.Second:  time.Second,
		5 * time.Second:  time.Second, // never below one bucket
		25 * time.Second: 3 * time.Second,
	} {
		if got := tu.panicWindow(stable); got != want {
			t.Errorf("panicWindow(%v) = %v, want %v", stable, got, want)
		}
	}
}
