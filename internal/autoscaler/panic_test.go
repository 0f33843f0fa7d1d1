package autoscaler

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/wire"
)

// The tests below start from panicAfterStep: an agent at 2 replicas (target
// 10) takes a 5x step to 100 concurrent requests, panics, and reaches the 10
// replicas the load needs while the gateway holds the excess. Its replicas
// then take up to 14 requests each (concurrency 14, target 10), so a load a
// little over 100 fits without any request held.

// panicAfterStep returns the feeder once the count has caught up with the
// step and the gateway has held nothing for a panic window.
func panicAfterStep(t *testing.T) *feeder {
	t.Helper()
	f := newFeeder(testSpec(), 2)
	f.t = 100
	f.run(40, 10) // steady at target, past the restart hold-off
	var dec wire.Decision
	for range 4 {
		dec = f.stepTotal(100, 10) // 2 ready replicas full: the gateway holds the rest
	}
	for range 3 {
		dec = f.stepTotal(100, 14) // nothing held: the hold's panic window passes
	}
	if !dec.Panic || dec.Desired != 10 || f.gw.Held != 0 {
		t.Fatalf("after the step: desired %d, panic %v, %d held; want 10 replicas in panic, none held", dec.Desired, dec.Panic, f.gw.Held)
	}
	return f
}

// A panic-window reading 10% over what the replicas carry at target (11
// replicas asked for, 10 running, nothing held) is noise once capacity has
// caught up: panic keeps the count, it does not ratchet it up. Before, it
// went to 11 at once and stayed for a stable window.
func TestDecidePanicKeepsCountOnNoiseAboveCurrent(t *testing.T) {
	f := panicAfterStep(t)
	for i := range 5 {
		dec := f.stepTotal(108, 14)
		if ceilInt32(dec.PanicDemand/10) <= dec.Current && i > 0 {
			t.Fatalf("tick %d: the panic window asks for %.1f concurrent, want it above the 10 replicas' target", i, dec.PanicDemand)
		}
		if !dec.Panic || dec.Desired != 10 || dec.Reason != wire.ReasonPanic {
			t.Fatalf("tick %d: panic window %.1f (%d replicas): desired %d (%s, panic %v), want 10 kept in panic",
				i, dec.PanicDemand, ceilInt32(dec.PanicDemand/10), dec.Desired, dec.Reason, dec.Panic)
		}
	}
}

// When the load really stays higher, the stable window raises the count,
// in panic as out of it.
func TestDecidePanicStableWindowStillRaises(t *testing.T) {
	f := panicAfterStep(t)
	var dec wire.Decision
	for range 30 { // a stable window at 10% over target
		dec = f.stepTotal(110, 14)
		if dec.Desired > 11 {
			t.Fatalf("t=%vs: desired %d for a steady 110 concurrent, want at most 11", f.t, dec.Desired)
		}
	}
	if dec.Desired != 11 {
		t.Errorf("after a stable window at 110 concurrent: desired %d (%s, stable %.1f), want 11", dec.Desired, dec.Reason, dec.StableDemand)
	}
}

// While the gateway holds requests, the replicas do not carry the load:
// the panic window raises the count by any amount.
func TestDecidePanicFollowsPanicWindowWhileGatewayHolds(t *testing.T) {
	f := panicAfterStep(t)
	var dec wire.Decision
	for range 3 {
		dec = f.stepTotal(108, 10.5) // 105 slots for 108: 3 held
	}
	if dec.Desired != 11 || !dec.Panic {
		t.Errorf("with requests held: desired %d (%s, panic %v, panic window %.1f), want 11", dec.Desired, dec.Reason, dec.Panic, dec.PanicDemand)
	}
}

// Requests refused count as a shortage too, even with none held (the hold
// queue was full a moment ago, or a hold timed out).
func TestDecidePanicFollowsPanicWindowAfterARefusal(t *testing.T) {
	f := panicAfterStep(t)
	f.gw.RejectedTotal += 5
	dec := f.stepTotal(108, 14) // nothing held
	if f.gw.Held != 0 || dec.Desired != 11 {
		t.Errorf("after 5 refusals, %d held: desired %d (%s, panic window %.1f), want 11", f.gw.Held, dec.Desired, dec.Reason, dec.PanicDemand)
	}
}

// A hold shows the replicas short for a panic window (6s): the panic window
// still holds the ticks it was measured in. After that, the same reading is
// noise again.
func TestDecidePanicShortageLastsAPanicWindow(t *testing.T) {
	held := func(f *feeder) {
		f.stepWith(func(ready int) []ReplicaSample {
			f.gw.Held = 2
			f.gw.RequestsTotal += 200 // 100/s, the load the 10 replicas carry
			return loaded(ready, 10)
		})
		f.gw.Held = 0
	}
	f := panicAfterStep(t)
	held(f)
	if dec := f.stepTotal(110, 14); dec.Desired != 11 {
		t.Errorf("2s after a hold: desired %d (%s, panic window %.1f), want 11", dec.Desired, dec.Reason, dec.PanicDemand)
	}
	f = panicAfterStep(t)
	held(f)
	for range 2 {
		f.stepTotal(100, 14)
	}
	if dec := f.stepTotal(110, 14); dec.Desired != 10 || !dec.Panic {
		t.Errorf("6s after a hold: desired %d (%s, panic window %.1f), want 10 kept in panic", dec.Desired, dec.Reason, dec.PanicDemand)
	}
}

// A rise of 20% or more is not noise: the panic window raises the count
// at once even though nothing is held and the rise is under the panic
// threshold. The last few percent are left to the stable window.
func TestDecidePanicFollowsARealRise(t *testing.T) {
	f := panicAfterStep(t)
	dec := f.stepTotal(130, 14) // 140 slots: nothing held
	for range 3 {
		if f.gw.Held != 0 {
			t.Fatalf("%d held, want none", f.gw.Held)
		}
		if dec.Desired >= 12 {
			break
		}
		dec = f.stepTotal(130, 14)
	}
	if dec.Desired < 12 || !dec.Panic {
		t.Fatalf("a 30%% rise: desired %d (%s, panic window %.1f), want at least 12 within two ticks", dec.Desired, dec.Reason, dec.PanicDemand)
	}
	for range 30 {
		if dec = f.stepTotal(130, 14); dec.Desired > 13 {
			t.Fatalf("t=%vs: desired %d for 130 concurrent, want at most 13", f.t, dec.Desired)
		}
	}
	if dec.Desired != 13 {
		t.Errorf("a stable window after a 30%% rise: desired %d, want 13", dec.Desired)
	}
}

// The 10x step at the simulator's target of 7: 100 concurrent requests need
// 15 replicas. After the step the load is steady but noisy as a Poisson load
// is (each 2s tick's average off by up to 15%, the 6s panic window's by
// about 5% at one standard deviation). For three minutes, in panic for the
// first and held by hysteresis after, the count stays at the 15 needed:
// the panic window never runs the 20% high (18 replicas) that would be more
// than noise, and the stable window stays at 15. Before, the panic window's
// noise ratcheted it to 16 on 19 of these 20 seeds and to 17 on one.
func TestDecidePanicDoesNotRatchetOnNoise(t *testing.T) {
	spec := testSpec()
	spec.Target = 7
	for seed := range uint64(20) {
		f := newFeeder(spec, 2)
		f.t = 100
		f.run(40, 7) // steady at target, past the restart hold-off
		for range 4 {
			f.stepTotal(100, 10) // the step: 2 replicas full, the rest held
		}
		rng := rand.New(rand.NewPCG(seed, 7))
		var peak, low int32 = 0, 1000
		panicked := false
		for range 90 {
			dec := f.stepTotal(100*(1+0.3*(rng.Float64()-0.5)), 14)
			peak, low = max(peak, dec.Desired), min(low, dec.Desired)
			panicked = panicked || dec.Panic
		}
		if !panicked {
			t.Fatal("never in panic")
		}
		if peak != 15 || low != 15 {
			t.Errorf("seed %d: between %d and %d replicas for a mean load needing 15, want 15 throughout", seed, low, peak)
		}
	}
}

func TestRisesBeyondNoise(t *testing.T) {
	for _, tt := range []struct {
		burst, current int32
		want           bool
	}{
		{2, 1, true}, {6, 5, true}, {11, 10, false}, {12, 10, true},
		{16, 15, false}, {17, 15, false}, {18, 15, true}, {15, 15, false},
	} {
		if got := risesBeyondNoise(tt.burst, tt.current); got != tt.want {
			t.Errorf("risesBeyondNoise(%d, %d) = %v, want %v", tt.burst, tt.current, got, tt.want)
		}
	}
}

// TestDecidePanicRisesOnlyWithCause drives Deciders with random specs and
// loads in which the gateway holds or refuses only now and then, and checks
// from each decision's own numbers that panic mode raised the count above
// both current and the stable window's count only with a cause: the panic
// window over the threshold, a request held or refused within the panic
// window, or a rise of at least 20%.
func TestDecidePanicRisesOnlyWithCause(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	tuning := DefaultTuning()
	causeless := 0
	for run := range 300 {
		spec := testSpec()
		spec.Target = float64(1 + rng.IntN(20))
		spec.StableWindow = time.Duration(6+rng.IntN(120)) * time.Second
		spec.MaxReplicas = 200
		panicWindow := tuning.panicWindow(spec.StableWindow)
		d := NewDecider(spec, tuning)
		now, current := epoch, int32(1+rng.IntN(20))
		var gw wire.Demand
		var lastShort time.Time
		prevRejected := gw.RejectedTotal
		load := float64(current) * spec.Target
		for step := range 200 {
			now = now.Add(time.Duration(1000+rng.IntN(2000)) * time.Millisecond)
			// A load that wanders, with now and then a step.
			load = max(0, load*(1+0.2*(rng.Float64()-0.5)))
			if rng.IntN(30) == 0 {
				load *= 1 + 3*rng.Float64()
			}
			ready := current
			if rng.IntN(4) == 0 {
				ready = int32(rng.IntN(int(current) + 1))
			}
			samples := loaded(int(ready), load/float64(max(ready, 1)))
			gw.Held = 0
			if rng.IntN(10) == 0 {
				gw.Held = int64(1 + rng.IntN(50))
			}
			gw.RequestsTotal += uint64(load * 2)
			if rng.IntN(15) == 0 {
				gw.RejectedTotal += uint64(1 + rng.IntN(10))
			}
			if gw.Held > 0 || gw.RejectedTotal > prevRejected {
				lastShort = now
			}
			prevRejected = gw.RejectedTotal
			dec := d.Decide(now, Observation{Replicas: samples, Gateway: gw, Current: current})
			if dec.Panic && dec.Reason == wire.ReasonPanic {
				stable := d.replicasFor(dec.StableDemand)
				burst := d.replicasFor(dec.PanicDemand)
				over := float64(burst) >= 2*float64(max(dec.Ready, 1))
				short := !lastShort.IsZero() && now.Sub(lastShort) < panicWindow
				if dec.Desired > max(current, stable) {
					if !over && !short && float64(burst) < 1.2*float64(current) {
						t.Fatalf("run %d step %d: panic raised %d → %d (stable %d, panic window %d, ready %d) without a cause",
							run, step, current, dec.Desired, stable, burst, dec.Ready)
					}
				} else if burst > current && !over && !short && float64(burst) < 1.2*float64(current) {
					causeless++
				}
			}
			current = dec.Desired
		}
	}
	// The generator must reach the case the rule is about.
	if causeless < 50 {
		t.Errorf("only %d panic ticks whose panic window asked for a little more with no cause; the test does not exercise the rule", causeless)
	}
	t.Logf("%d panic ticks kept the count against a panic window a little above it", causeless)
}
