package proxy

import (
	"math/big"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flint-dev/flint/internal/wire"
)

type fakeClock struct{ t time.Duration }

func (c *fakeClock) now() time.Duration { return c.t }

func TestAccumulatorIntegralsAreExact(t *testing.T) {
	clk := &fakeClock{}
	a := newAccumulator(clk.now)
	step := func(at time.Duration, dIn, dQ int64) {
		clk.t = at
		a.change(at, dIn, dQ)
	}
	step(0, 1, 0)                         // 1 in flight
	step(time.Second, 1, 0)               // 2 in flight
	step(1500*time.Millisecond, 0, 1)     // 1 queued
	step(3*time.Second, -1, 0)            // 1 in flight
	step(3250*time.Millisecond, 1, -1)    // queued one gets the slot: 2 in flight
	step(3250*time.Millisecond+1, -1, +0) // 1ns later one finishes
	clk.t = 4 * time.Second
	s := a.snapshot()

	// in flight: 1×1s + 2×2s + 1×0.25s + 2×1ns + 1×(0.75s-1ns)
	wantIn := 1 + 4 + 0.25 + 0.75 + 1e-9
	// queued: 1 × (3.25s - 1.5s)
	wantQ := 1.75
	if s.InFlightSeconds != wantIn || s.QueuedSeconds != wantQ {
		t.Fatalf("integrals = (%v, %v), want (%v, %v)", s.InFlightSeconds, s.QueuedSeconds, wantIn, wantQ)
	}
	if s.UptimeSeconds != 4 || s.InFlight != 1 || s.Queued != 0 {
		t.Fatalf("snapshot = %+v", s)
	}

	// Between two snapshots the scraper's average is exact.
	prev := s
	clk.t = 6 * time.Second
	cur := a.snapshot()
	in, q, ok := wire.Average(prev, cur)
	if !ok || in != 1 || q != 0 {
		t.Fatalf("Average = (%v, %v, %v), want (1, 0, true)", in, q, ok)
	}
}

// A change stamped before the last one (two goroutines racing between the
// clock read and the lock) counts as happening at the last change, so
// integrals never go backwards.
func TestAccumulatorLateTimestamp(t *testing.T) {
	clk := &fakeClock{t: 2 * time.Second}
	a := newAccumulator(clk.now)
	a.change(2*time.Second, 1, 0)
	a.change(1*time.Second, 1, 0) // late: treated as at 2s
	clk.t = 3 * time.Second
	if s := a.snapshot(); s.InFlightSeconds != 2 || s.UptimeSeconds != 3 {
		t.Fatalf("got %+v, want 2 in-flight-seconds at uptime 3", s)
	}
}

// Months of heavy load must neither overflow nor lose nanoseconds.
func TestIntegralLargeValuesExact(t *testing.T) {
	var i integral
	const n = 50_000
	dt := 400*24*time.Hour + 123456789 // over a year, with a sub-second tail
	for range 10 {
		i.add(n, dt)
	}
	want := new(big.Int).Mul(big.NewInt(10*n), big.NewInt(int64(dt)))
	got := new(big.Int).Add(new(big.Int).Mul(big.NewInt(i.sec), big.NewInt(1e9)), big.NewInt(i.ns))
	if got.Cmp(want) != 0 {
		t.Fatalf("integral = %s ns, want %s ns", got, want)
	}
	if i.ns < 0 || i.ns >= 1e9 {
		t.Fatalf("ns part %d not normalised", i.ns)
	}
}

func TestMonotonicClockUptime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newAccumulator(nil)
		a.change(a.now(), 3, 0)
		time.Sleep(1500 * time.Millisecond)
		s := a.snapshot()
		if s.UptimeSeconds != 1.5 || s.InFlightSeconds != 4.5 {
			t.Fatalf("got uptime %v, in-flight-seconds %v; want 1.5 and 4.5", s.UptimeSeconds, s.InFlightSeconds)
		}
	})
}
