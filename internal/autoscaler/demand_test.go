package autoscaler

import (
	"math"
	"testing"
	"time"
)

// Tests of how one tick's observation becomes demand: replicas' load, the
// gateway's held and refused requests, and stats that could not be read.

func TestDecideCountsHeldAndQueuedAsDemand(t *testing.T) {
	// One replica full at its cap of 10 in flight with 5 queued; 1s
	// requests arrive at 100/s and the gateway holds 60. Demand is the
	// offered 100 plus 10 to clear the backlog within the panic window.
	// Averaged over the panic window with the previous tick's 15, that asks
	// for 7 replicas at target 10 at once (11 two ticks later); Knative's
	// capped in-flight alone (10) would ask for 1.
	full := []ReplicaSample{{InFlight: 10, Queued: 5, Requests: 20, Span: 2 * time.Second, Known: true}}
	d := NewDecider(testSpec(), DefaultTuning())
	d.Decide(at(0), Observation{Replicas: full, Current: 1})
	dec := d.Decide(at(2), Observation{Replicas: full, Current: 1, Gateway: Demand{Held: 60, RequestsTotal: 200}})
	if math.Abs(dec.Demand-110) > 1e-9 || dec.Desired != 7 || !dec.Panic {
		t.Errorf("got demand %v desired %d panic %v, want 110, 7, true", dec.Demand, dec.Desired, dec.Panic)
	}
	// Once the 6s panic window holds only the new load: 11.
	d.Decide(at(4), Observation{Replicas: full, Current: 7, Gateway: Demand{Held: 60, RequestsTotal: 400}})
	dec = d.Decide(at(6), Observation{Replicas: full, Current: 7, Gateway: Demand{Held: 60, RequestsTotal: 600}})
	if dec.Desired != 11 {
		t.Errorf("two ticks later: desired %d, want 11", dec.Desired)
	}

	// On a first observation there is no arrival rate yet: the backlog
	// alone counts (60 held × 1s / 6s), on top of what replicas hold.
	d = NewDecider(testSpec(), DefaultTuning())
	dec = d.Decide(at(0), Observation{Replicas: full, Current: 1, Gateway: Demand{Held: 60}})
	if math.Abs(dec.Demand-25) > 1e-9 || dec.Desired != 3 {
		t.Errorf("first observation: demand %v desired %d, want 25, 3", dec.Demand, dec.Desired)
	}
}

func TestDecideOfferedLoadByLittlesLaw(t *testing.T) {
	// Two full replicas (10 in flight each) admitted 40 requests in 2s:
	// 20/s at 20 in flight is 1s each. The gateway saw 200 arrive in those
	// 2s and refused 100: the offered load is 100/s × 1s = 100 concurrent.
	full := []ReplicaSample{{InFlight: 10, Requests: 20, Span: 2 * time.Second, Known: true}, {InFlight: 10, Requests: 20, Span: 2 * time.Second, Known: true}}
	d := NewDecider(testSpec(), DefaultTuning())
	d.Decide(at(0), Observation{Replicas: full, Current: 2, Gateway: Demand{RequestsTotal: 1000, RejectedTotal: 100}})
	dec := d.Decide(at(2), Observation{Replicas: full, Current: 2, Gateway: Demand{RequestsTotal: 1200, RejectedTotal: 200}})
	if math.Abs(dec.Demand-100) > 1e-9 {
		t.Errorf("demand %v, want 100", dec.Demand)
	}

	// Held requests are a backlog: each needs a slot for its service time
	// (1s) out of the 6s panic window, so 60 held add 10, not 60.
	dec = d.Decide(at(4), Observation{Replicas: full, Current: 2, Gateway: Demand{Held: 60, RequestsTotal: 1400, RejectedTotal: 200}})
	if math.Abs(dec.Demand-110) > 1e-9 {
		t.Errorf("demand with 60 held %v, want 100 offered + 10 backlog", dec.Demand)
	}

	// With nothing admitted there is no service time to measure; 1s is
	// assumed: 25 arrivals in 2s and 6 held make 12.5 + 1 (averaged
	// with the first tick's 0: 1 replica).
	d = NewDecider(testSpec(), DefaultTuning())
	d.Decide(at(0), Observation{Gateway: Demand{RequestsTotal: 10, RejectedTotal: 10}})
	dec = d.Decide(at(2), Observation{Gateway: Demand{Held: 6, RequestsTotal: 35, RejectedTotal: 30}})
	if math.Abs(dec.Demand-13.5) > 1e-9 || dec.Desired != 1 {
		t.Errorf("demand %v desired %d, want 13.5 and 1", dec.Demand, dec.Desired)
	}
}

func TestDecideIgnoresArrivalsWhileEverythingIsAdmitted(t *testing.T) {
	// Counters from the gateway and the sidecars never line up exactly;
	// with nothing held or refused the replicas' own count is the demand.
	d := NewDecider(testSpec(), DefaultTuning())
	d.Decide(at(0), Observation{Replicas: loaded(1, 3), Current: 1, Gateway: Demand{RequestsTotal: 0}})
	dec := d.Decide(at(2), Observation{Replicas: loaded(1, 3), Current: 1, Gateway: Demand{RequestsTotal: 50}})
	if dec.Demand != 3 {
		t.Errorf("demand %v, want 3", dec.Demand)
	}
}

func TestDecideCounterResetIsNotANegativeRate(t *testing.T) {
	d := NewDecider(testSpec(), DefaultTuning())
	d.Decide(at(0), Observation{Replicas: loaded(1, 5), Current: 1, Gateway: Demand{RequestsTotal: 1000, RejectedTotal: 500}})
	dec := d.Decide(at(2), Observation{Replicas: loaded(1, 5), Current: 1, Gateway: Demand{RequestsTotal: 10, RejectedTotal: 0}})
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
		if dec.Desired != 3 || dec.Reason != ReasonNoData {
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
		// 80 arrivals in 2s at an assumed 1s, plus 12 held: 40 + 2.
		dec := d.Decide(at(2), Observation{Replicas: make([]ReplicaSample, 1), Current: 1, Gateway: Demand{Held: 12, RequestsTotal: 80}})
		if dec.Demand != 42 || dec.Desired != 5 {
			t.Errorf("demand %v desired %d (%s), want 42, 5", dec.Demand, dec.Desired, dec.Reason)
		}
	})
}
