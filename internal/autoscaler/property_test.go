package autoscaler

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/wire"
)

// TestDecideInvariants drives Deciders with random specs and random
// observation sequences (random load, held requests, refusals, failed
// scrapes, replicas that lag the decisions, idle stretches, pokes) and checks
// the rules that must hold whatever the input:
//   - desired is always within [minReplicas, maxReplicas];
//   - while panicking, desired never drops below current;
//   - with a request held or in flight, desired is never zero.
func TestDecideInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for run := range 400 {
		spec := Spec{
			MinReplicas:      int32(rng.IntN(3)),
			Target:           float64(1 + rng.IntN(20)),
			ScaleToZeroAfter: time.Duration(1+rng.IntN(60)) * time.Second,
			StableWindow:     time.Duration(6+rng.IntN(120)) * time.Second,
		}
		spec.MaxReplicas = spec.MinReplicas + 1 + int32(rng.IntN(50))
		tuning := DefaultTuning()
		tuning.MaxScaleUpRate = 1.5 + rng.Float64()*10
		tuning.MaxScaleDownRate = 1.1 + rng.Float64()*4
		d := NewDecider(spec, tuning)

		now := epoch
		current := int32(rng.IntN(int(spec.MaxReplicas) + 1))
		ready := current
		var gw wire.Demand
		for step := range 300 {
			now = now.Add(time.Duration(500+rng.IntN(4000)) * time.Millisecond)
			// Replicas turn ready late, sometimes not at all.
			if rng.IntN(3) > 0 {
				ready = current
			}
			ready = min(ready, current)

			idle := rng.IntN(4) == 0
			samples := make([]ReplicaSample, ready)
			for i := range samples {
				if rng.IntN(10) == 0 {
					continue // failed scrape: unknown
				}
				samples[i].Known = true
				if !idle {
					samples[i].InFlight = rng.Float64() * spec.Target * 3
					samples[i].Queued = float64(rng.IntN(3))
				}
			}
			gw.Held = 0
			if !idle && rng.IntN(3) == 0 {
				gw.Held = int64(rng.IntN(200))
			}
			if !idle {
				n := uint64(rng.IntN(100))
				gw.RequestsTotal += n
				gw.RejectedTotal += uint64(rng.IntN(int(n) + 1))
				gw.LastRequest = now
			}

			if current == 0 && rng.IntN(5) == 0 {
				if dec, ok := d.Poke(now, current); ok {
					checkBounds(t, run, step, spec, dec)
					current = dec.Desired
					continue
				}
			}
			obs := Observation{Replicas: samples, Gateway: gw, Current: current}
			dec := d.Decide(now, obs)
			checkBounds(t, run, step, spec, dec)
			if dec.Panic && dec.Desired < current {
				t.Fatalf("run %d step %d: scaled down %d → %d while panicking (%s)", run, step, current, dec.Desired, dec.Reason)
			}
			busy := gw.Held > 0
			for _, s := range samples {
				busy = busy || (s.Known && s.InFlight+s.Queued > 0)
			}
			if busy && dec.Desired == 0 {
				t.Fatalf("run %d step %d: desired 0 with requests held (%d) or in flight (%s)", run, step, gw.Held, dec.Reason)
			}
			current = dec.Desired
		}
	}
}

func checkBounds(t *testing.T, run, step int, spec Spec, dec wire.Decision) {
	t.Helper()
	if dec.Desired < spec.MinReplicas || dec.Desired > spec.MaxReplicas {
		t.Fatalf("run %d step %d: desired %d outside [%d, %d] (%s)", run, step, dec.Desired, spec.MinReplicas, spec.MaxReplicas, dec.Reason)
	}
}

// TestDecideRateLimitsHold checks, on random inputs, that one decision never
// more than divides current by MaxScaleDownRate (unless clamped to max) nor
// grows past MaxScaleUpRate × ready (unless raised to min).
func TestDecideRateLimitsHold(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tuning := DefaultTuning()
	tuning.MaxScaleUpRate = 2
	for run := range 2000 {
		spec := testSpec()
		spec.MaxReplicas = 1000
		d := NewDecider(spec, tuning)
		current := int32(1 + rng.IntN(200))
		ready := int32(rng.IntN(int(current) + 1))
		// Past the restart hold-off, with random history.
		d.Decide(epoch, Observation{Replicas: loaded(int(ready), rng.Float64()*30), Current: current})
		d.lastScaleUp = time.Time{}
		now := epoch.Add(time.Duration(rng.IntN(200)) * time.Second)
		dec := d.Decide(now, Observation{Replicas: loaded(int(ready), rng.Float64()*100), Gateway: wire.Demand{Held: int64(rng.IntN(5000))}, Current: current})
		if lo := int32(float64(current) / tuning.MaxScaleDownRate); dec.Desired < lo {
			t.Fatalf("run %d: %d → %d is more than halving (%s)", run, current, dec.Desired, dec.Reason)
		}
		if hi := max(current, int32(2*max(ready, 1))); dec.Desired > hi {
			t.Fatalf("run %d: %d (ready %d) → %d grows past 2× ready (%s)", run, current, ready, dec.Desired, dec.Reason)
		}
	}
}
