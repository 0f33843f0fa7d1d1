package autoscaler

import (
	"bytes"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/wire"
)

// workers counts the agents' worker goroutines.
func workers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte("autoscaler.(*Loop).work("))
		}
		buf = make([]byte, 2*len(buf))
	}
}

func TestLoopAgentAtRestHasNoWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newLoopTest(testAgent("cold", 10, 0, 5))
		l := f.start(t)
		synctest.Wait()
		if n := workers(); n != 0 {
			t.Fatalf("%d workers for an agent idle at zero, want none", n)
		}
		if decs := l.Decisions(f.key); len(decs) != 1 || decs[0].Reason != wire.ReasonScaleToZero {
			t.Fatalf("decisions %+v, want the first tick's", decs)
		}

		time.Sleep(time.Minute + time.Second) // thirty ticks at rest
		synctest.Wait()
		f.gw.Set(f.key, wire.Demand{Held: 1, RequestsTotal: 1, LastRequest: time.Now()})
		l.Poke(f.key)
		synctest.Wait()
		if n := workers(); n != 1 {
			t.Errorf("%d workers after a poke, want 1", n)
		}
		if calls := f.p.ScaleCalls(); len(calls) != 1 || calls[0].N != 1 {
			t.Fatalf("scale calls %+v, want one to 1", calls)
		}

		// The request is served and traffic stops: the agent goes back to
		// zero (30s idle) and to rest once its stable window holds no
		// demand.
		f.gw.Set(f.key, wire.Demand{RequestsTotal: 1, LastRequest: time.Now()})
		time.Sleep(40 * time.Second)
		synctest.Wait()
		if calls := f.p.ScaleCalls(); len(calls) != 2 || calls[1].N != 0 {
			t.Fatalf("scale calls %+v, want back to 0", calls)
		}
		time.Sleep(60 * time.Second)
		synctest.Wait()
		if n := workers(); n != 0 {
			t.Errorf("%d workers a stable window after scaling to zero, want none", n)
		}
	})
}

// TestLoopAgentAtRestDecidesAsIfTicked: an agent that rests and wakes
// decides exactly as a Decider ticked every 2s throughout, because the
// worker records the ticks it skipped before deciding again.
func TestLoopAgentAtRestDecidesAsIfTicked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newLoopTest(testAgent("cold", 10, 0, 20)) // target 7
		t0 := time.Now()
		// Two cold starts of held requests that are never served (no
		// replica turns ready): each wakes the agent, which rests again
		// once idle for a stable window.
		demandAt := func(s float64) wire.Demand {
			switch {
			case s < 95:
				return wire.Demand{}
			case s < 105:
				return wire.Demand{Held: 30, RequestsTotal: 30, LastRequest: t0.Add(95 * time.Second)}
			case s < 301:
				return wire.Demand{RequestsTotal: 30, RejectedTotal: 30, LastRequest: t0.Add(95 * time.Second)}
			default:
				return wire.Demand{Held: 50, RequestsTotal: 80, RejectedTotal: 30, LastRequest: t0.Add(301 * time.Second)}
			}
		}
		pokes := []float64{95, 301}
		const end = 340.0

		l := f.start(t)
		for s := 0.0; s < end; s++ {
			time.Sleep(time.Second)
			synctest.Wait()
			f.gw.Set(f.key, demandAt(s+1))
			for _, pk := range pokes {
				if pk == s+1 {
					l.Poke(f.key)
				}
			}
			synctest.Wait()
		}
		got := l.Decisions(f.key)

		// The same agent, ticked every 2s by hand.
		d := NewDecider(SpecOf(f.agent), DefaultTuning())
		want := newHistory(DefaultDecisionHistory)
		current := int32(0)
		pk := 0
		for s := 0.0; s <= end; s += 2 {
			for pk < len(pokes) && pokes[pk] < s {
				if dec, ok := d.Poke(t0.Add(time.Duration(pokes[pk]*float64(time.Second))), current); ok {
					want.add(dec)
					current = dec.Desired
				}
				pk++
			}
			dec := d.Decide(t0.Add(time.Duration(s*float64(time.Second))), Observation{Current: current, Gateway: demandAt(s)})
			want.add(dec)
			current = dec.Desired
		}
		if w := want.list(); !sameDecisions(got, w) {
			t.Errorf("decisions of a resting agent differ from one ticked throughout:\ngot  %+v\nwant %+v", got, w)
		}
		if n := len(f.p.ScaleCalls()); n < 4 {
			t.Errorf("%d scale calls, want the agent woken twice and scaled back each time", n)
		}
	})
}

func sameDecisions(a, b []wire.Decision) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.Time, y.Time = time.Time{}, time.Time{}
		if x != y || !a[i].Time.Equal(b[i].Time) {
			return false
		}
	}
	return true
}

func TestLoopWakesAgentAtRestWithoutPoke(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newLoopTest(testAgent("cold", 10, 0, 5))
		f.start(t)
		time.Sleep(10 * time.Second)
		synctest.Wait()

		// A held request whose poke was lost (a gateway's poke stream was
		// down): the next tick sees the demand.
		f.gw.Set(f.key, wire.Demand{Held: 1, RequestsTotal: 1, LastRequest: time.Now()})
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if calls := f.p.ScaleCalls(); len(calls) != 1 || calls[0].N != 1 {
			t.Fatalf("scale calls %+v, want one to 1 at the tick after the demand", calls)
		}

		// A spec change: minReplicas raised on an agent at rest.
		other := testAgent("floor", 10, 0, 5)
		okey := platform.KeyOf(other)
		f.p.SetAgent(other)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := f.p.Replicas(okey); n != 0 {
			t.Fatalf("replicas %d of a new idle agent, want 0", n)
		}
		raised := testAgent("floor", 10, 2, 5)
		f.p.SetAgent(raised)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := f.p.Replicas(okey); n != 2 {
			t.Errorf("replicas %d after minReplicas was raised to 2 at rest, want 2", n)
		}
	})
}

func TestLoopForgetsDeletedRunningAgent(t *testing.T) {
	sidecar := newFakeSidecar(t, 5)
	synctest.Test(t, func(t *testing.T) {
		f := newLoopTest(testAgent("gone", 10, 1, 5), sidecar.endpoint("gone-0"))
		f.start(t)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if workers() != 1 {
			t.Fatalf("%d workers for an agent with a replica, want 1", workers())
		}
		f.deleteAgent(t)
		if n := workers(); n != 0 {
			t.Errorf("%d workers left for a deleted agent", n)
		}
	})
}

// TestLoopNoEarlyTickRightAfterATick: an arrival rate measured over the
// milliseconds since the last decision is noise (one request reads as
// hundreds a second), so a poke within a quarter tick of any decision does
// not decide again.
func TestLoopNoEarlyTickRightAfterATick(t *testing.T) {
	sidecar := newFakeSidecar(t, 10) // full
	synctest.Test(t, func(t *testing.T) {
		f := newLoopTest(testAgent("busy", 10, 1, 20), sidecar.endpoint("busy-0"))
		f.gw.Set(f.key, wire.Demand{RequestsTotal: 100, LastRequest: time.Now()})
		l := f.start(t)
		synctest.Wait() // the first tick
		decided, scaled := len(l.Decisions(f.key)), len(f.p.ScaleCalls())
		time.Sleep(100 * time.Millisecond)
		f.gw.Set(f.key, wire.Demand{Held: 3, RequestsTotal: 103, LastRequest: time.Now()})
		l.Poke(f.key)
		synctest.Wait()
		if n := len(l.Decisions(f.key)); n != decided {
			t.Errorf("%d decisions after a poke 100ms after the tick, want still %d", n, decided)
		}
		if calls := f.p.ScaleCalls(); len(calls) != scaled {
			t.Errorf("scale calls %+v after the poke, want none since the tick's", calls[scaled:])
		}
	})
}
