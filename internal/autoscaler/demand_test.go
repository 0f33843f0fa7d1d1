package autoscaler

import (
	"math"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/wire"
)

// Tests of how one tick's observation becomes demand: replicas' load, the
// gateway's held and refused requests, and stats that could not be read.

func TestDecideCountsHeldAndQueuedAsDemand(t *testing.T) {
	// One replica full at its cap of 10 in flight with 5 queued, finishing
	// 10 requests a second (1s each); 1s requests arrive at 100/s and the
	// gateway holds 60. Demand is the offered 100: every held request was
	// counted once, when it arrived. Averaged over the panic window with
	// the previous tick's 15, that asks for 6 replicas at target 10 at once
	// (10 two ticks later); Knative's capped in-flight alone (10) would ask
	// for 1.
	full := []ReplicaSample{{InFlight: 10, Queued: 5, Requests: 20, Completed: 20, Span: 2 * time.Second, Known: true}}
	d := NewDecider(testSpec(), DefaultTuning())
	d.Decide(at(0), Observation{Replicas: full, Current: 1})
	dec := d.Decide(at(2), Observation{Replicas: full, Current: 1, Gateway: wire.Demand{Held: 60, RequestsTotal: 200}})
	if math.Abs(dec.Demand-100) > 1e-9 || dec.Desired != 6 || !dec.Panic {
		t.Errorf("got demand %v desired %d panic %v, want 100, 6, true", dec.Demand, dec.Desired, dec.Panic)
	}
	// Once the 6s panic window holds only the new load: 10, however long
	// the same 60 stay held.
	d.Decide(at(4), Observation{Replicas: full, Current: 6, Gateway: wire.Demand{Held: 60, RequestsTotal: 400}})
	dec = d.Decide(at(6), Observation{Replicas: full, Current: 6, Gateway: wire.Demand{Held: 60, RequestsTotal: 600}})
	if dec.Desired != 10 {
		t.Errorf("two ticks later: desired %d, want 10", dec.Desired)
	}

	// On a first observation there is no arrival rate yet: each request
	// in the system counts once, held (60) or on the replica (15).
	d = NewDecider(testSpec(), DefaultTuning())
	dec = d.Decide(at(0), Observation{Replicas: full, Current: 1, Gateway: wire.Demand{Held: 60}})
	if math.Abs(dec.Demand-75) > 1e-9 || dec.Desired != 8 {
		t.Errorf("first observation: demand %v desired %d, want 75, 8", dec.Demand, dec.Desired)
	}
}

func TestDecideOfferedLoadByLittlesLaw(t *testing.T) {
	// Two full replicas (10 in flight each) finished 40 requests in 2s:
	// 20/s at 20 in flight is 1s each. The gateway saw 200 arrive in those
	// 2s and refused 100: the offered load is 100/s × 1s = 100 concurrent.
	full := []ReplicaSample{{InFlight: 10, Requests: 20, Completed: 20, Span: 2 * time.Second, Known: true}, {InFlight: 10, Requests: 20, Completed: 20, Span: 2 * time.Second, Known: true}}
	d := NewDecider(testSpec(), DefaultTuning())
	d.Decide(at(0), Observation{Replicas: full, Current: 2, Gateway: wire.Demand{RequestsTotal: 1000, RejectedTotal: 100}})
	dec := d.Decide(at(2), Observation{Replicas: full, Current: 2, Gateway: wire.Demand{RequestsTotal: 1200, RejectedTotal: 200}})
	if math.Abs(dec.Demand-100) > 1e-9 {
		t.Errorf("demand %v, want 100", dec.Demand)
	}

	// Held requests were counted when they arrived: 60 held add nothing
	// on top of the 100/s offered, on this tick or any later one.
	dec = d.Decide(at(4), Observation{Replicas: full, Current: 2, Gateway: wire.Demand{Held: 60, RequestsTotal: 1400, RejectedTotal: 200}})
	if math.Abs(dec.Demand-100) > 1e-9 {
		t.Errorf("demand with 60 held %v, want the 100 offered", dec.Demand)
	}
	// When the backlog drains onto new replicas, their in-flight count
	// holds it a second time: for a panic window after the last hold the
	// offered load stays the measure.
	drained := []ReplicaSample{{InFlight: 70, Requests: 200, Completed: 140, Span: 2 * time.Second, Known: true}, {InFlight: 70, Requests: 200, Completed: 140, Span: 2 * time.Second, Known: true}}
	dec = d.Decide(at(6), Observation{Replicas: drained, Current: 2, Gateway: wire.Demand{RequestsTotal: 1600, RejectedTotal: 200}})
	if dec.Demand > 101 {
		t.Errorf("demand %v while the backlog drains, want about the 100 offered, not the 140 in flight", dec.Demand)
	}

	// With nothing completed there is no service time to measure; 1s is
	// assumed: 25 arrivals in 2s make 12.5 (averaged with the first
	// tick's 0: 1 replica).
	d = NewDecider(testSpec(), DefaultTuning())
	d.Decide(at(0), Observation{Gateway: wire.Demand{RequestsTotal: 10, RejectedTotal: 10}})
	dec = d.Decide(at(2), Observation{Gateway: wire.Demand{Held: 6, RequestsTotal: 35, RejectedTotal: 30}})
	if math.Abs(dec.Demand-12.5) > 1e-9 || dec.Desired != 1 {
		t.Errorf("demand %v desired %d, want 12.5 and 1", dec.Demand, dec.Desired)
	}
}

func TestDecideIgnoresArrivalsWhileEverythingIsAdmitted(t *testing.T) {
	// Counters from the gateway and the sidecars never line up exactly;
	// with nothing held or refused the replicas' own count is the demand.
	d := NewDecider(testSpec(), DefaultTuning())
	d.Decide(at(0), Observation{Replicas: loaded(1, 3), Current: 1, Gateway: wire.Demand{RequestsTotal: 0}})
	dec := d.Decide(at(2), Observation{Replicas: loaded(1, 3), Current: 1, Gateway: wire.Demand{RequestsTotal: 50}})
	if dec.Demand != 3 {
		t.Errorf("demand %v, want 3", dec.Demand)
	}
}

func TestDecideCounterResetIsNotANegativeRate(t *testing.T) {
	d := NewDecider(testSpec(), DefaultTuning())
	d.Decide(at(0), Observation{Replicas: loaded(1, 5), Current: 1, Gateway: wire.Demand{RequestsTotal: 1000, RejectedTotal: 500}})
	dec := d.Decide(at(2), Observation{Replicas: loaded(1, 5), Current: 1, Gateway: wire.Demand{RequestsTotal: 10, RejectedTotal: 0}})
	if dec.Demand != 5 {
		t.Errorf("demand after a gateway restart %v, want 5", dec.Demand)
	}
}

func TestDecideUnknownReplicas(t *testing.T) {
	t.Run("extrapolated from those that answered", func(t *testing.T) {
		d := NewDecider(testSpec(), DefaultTuning())
		samples := append(loaded(2, 10), ReplicaSample{}, ReplicaSample{})
		dec := d.Decide(at(0), Observation{Replicas: samples, Current: 4})
		if dec.Demand != 40 || dec.Unknown != 2 || dec.Desired != 4 {
			t.Errorf("demand %v unknown %d desired %d, want 40, 2, 4", dec.Demand, dec.Unknown, dec.Desired)
		}
	})
	t.Run("nothing ever known keeps the count", func(t *testing.T) {
		d := NewDecider(testSpec(), DefaultTuning())
		dec := d.Decide(at(0), Observation{Replicas: make([]ReplicaSample, 3), Current: 3})
		if dec.Desired != 3 || dec.Reason != wire.ReasonNoData {
			t.Errorf("desired %d (%s), want 3 (no-data)", dec.Desired, dec.Reason)
		}
	})
	t.Run("a silent fleet carries its last load, never zero", func(t *testing.T) {
		d := NewDecider(testSpec(), DefaultTuning())
		d.Decide(at(0), Observation{Replicas: loaded(3, 10), Current: 3})
		for s := 2.0; s <= 100; s += 2 {
			dec := d.Decide(at(s), Observation{Replicas: make([]ReplicaSample, 3), Current: 3})
			if dec.Desired < 3 {
				t.Fatalf("t=%vs: desired %d (%s) with every scrape failing, want 3", s, dec.Desired, dec.Reason)
			}
		}
	})
	t.Run("gateway demand counts even when no replica answers", func(t *testing.T) {
		d := NewDecider(testSpec(), DefaultTuning())
		d.Decide(at(0), Observation{Replicas: make([]ReplicaSample, 1), Current: 1})
		// 80 arrivals in 2s at an assumed 1s; the 12 held are among them.
		dec := d.Decide(at(2), Observation{Replicas: make([]ReplicaSample, 1), Current: 1, Gateway: wire.Demand{Held: 12, RequestsTotal: 80}})
		if dec.Demand != 40 || dec.Desired != 4 {
			t.Errorf("demand %v desired %d (%s), want 40, 4", dec.Demand, dec.Desired, dec.Reason)
		}
	})
}

func TestSampleFromStatsCountsCompletions(t *testing.T) {
	prev := wire.Stats{UptimeSeconds: 10, InFlight: 4, InFlightSeconds: 100, RequestsTotal: 50}
	// 2s later: 30 more admitted, 10 in flight now. 24 finished.
	cur := wire.Stats{UptimeSeconds: 12, InFlight: 10, InFlightSeconds: 114, RequestsTotal: 80}
	s := SampleFromStats(&prev, cur)
	if s.Requests != 30 || s.Completed != 24 || s.InFlight != 7 || s.Span != 2*time.Second {
		t.Errorf("sample %+v, want 30 admitted, 24 completed, 7 in flight over 2s", s)
	}
	// The in-flight count fell: more finished than were admitted.
	s = SampleFromStats(&cur, wire.Stats{UptimeSeconds: 14, InFlight: 2, InFlightSeconds: 126, RequestsTotal: 85})
	if s.Completed != 13 {
		t.Errorf("completed %d, want 13 (5 admitted + 8 fewer in flight)", s.Completed)
	}
	if first := SampleFromStats(nil, cur); first.Completed != 0 || first.Span != 0 {
		t.Errorf("first sample %+v, want no completions measured", first)
	}
}

func TestServiceTimeIsMeasuredOverTheStableWindow(t *testing.T) {
	// 1s requests for a minute, then one tick whose few completions say
	// 0.5s: the measure barely moves, so one noisy tick cannot halve the
	// offered load.
	d := NewDecider(testSpec(), DefaultTuning())
	for s := 0.0; s < 60; s += 2 {
		d.Decide(at(s), Observation{Replicas: loaded(1, 10), Current: 1})
	}
	noisy := []ReplicaSample{{InFlight: 10, Requests: 40, Completed: 40, Span: 2 * time.Second, Known: true}}
	d.Decide(at(60), Observation{Replicas: noisy, Current: 1, Gateway: wire.Demand{Held: 10, RequestsTotal: 100}})
	d.Decide(at(62), Observation{Replicas: noisy, Current: 1, Gateway: wire.Demand{Held: 10, RequestsTotal: 300}})
	dec := d.Decide(at(64), Observation{Replicas: loaded(1, 10), Current: 1, Gateway: wire.Demand{Held: 10, RequestsTotal: 500}})
	if dec.Demand < 90 || dec.Demand > 100 {
		t.Errorf("demand %v at 100 req/s of 1s requests after two noisy ticks, want 90–100", dec.Demand)
	}
}
