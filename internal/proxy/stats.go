package proxy

import (
	"sync"
	"time"

	"github.com/flint-dev/flint/internal/wire"
)

// accumulator keeps the in-flight and queued counts together with their
// integrals over time, advanced at every change, so a scraper can compute
// the exact time-weighted average between any two snapshots (see
// wire.Stats). Counts and integrals must change together for that to be
// exact, which needs a lock; it is held for a few arithmetic instructions,
// never across I/O or a clock read.
type accumulator struct {
	now func() time.Duration // monotonic time since start

	mu               sync.Mutex
	last             time.Duration
	inFlight, queued int64
	inFlightInt      integral
	queuedInt        integral
}

// integral is a count integrated over time, kept in whole nanoseconds so
// that it is exact (a float sum would drift over months of small steps).
type integral struct {
	sec int64 // whole count-seconds
	ns  int64 // count-nanoseconds below one second, in [0, 1e9)
}

func (i *integral) add(n int64, dt time.Duration) {
	if n == 0 || dt <= 0 {
		return
	}
	// Split dt before multiplying so n*dt cannot overflow: n*1e9 and
	// n*(seconds in dt) both stay far inside int64 for any real n.
	i.sec += n * int64(dt/time.Second)
	i.ns += n * int64(dt%time.Second)
	if i.ns >= int64(time.Second) {
		i.sec += i.ns / int64(time.Second)
		i.ns %= int64(time.Second)
	}
}

func (i integral) seconds() float64 {
	return float64(i.sec) + float64(i.ns)/float64(time.Second)
}

// monotonicClock returns the time since its creation from Go's monotonic
// clock, which wall-clock steps (NTP, manual changes) cannot move.
func monotonicClock() func() time.Duration {
	start := time.Now()
	return func() time.Duration { return time.Since(start) }
}

func newAccumulator(now func() time.Duration) *accumulator {
	if now == nil {
		now = monotonicClock()
	}
	return &accumulator{now: now}
}

// change applies deltas to the counts at time t (from a.now, read by the
// caller outside the lock). A t older than the last change, possible when
// two goroutines race between reading the clock and locking, is treated as
// happening at the last change: the ordering the lock imposes is the one the
// integrals follow.
func (a *accumulator) change(t time.Duration, dInFlight, dQueued int64) {
	a.mu.Lock()
	a.advance(t)
	a.inFlight += dInFlight
	a.queued += dQueued
	a.mu.Unlock()
}

func (a *accumulator) advance(t time.Duration) {
	if dt := t - a.last; dt > 0 {
		a.inFlightInt.add(a.inFlight, dt)
		a.queuedInt.add(a.queued, dt)
		a.last = t
	}
}

// snapshot fills the load fields of wire.Stats as of now.
func (a *accumulator) snapshot() wire.Stats {
	t := a.now()
	a.mu.Lock()
	a.advance(t)
	s := wire.Stats{
		UptimeSeconds:   a.last.Seconds(),
		InFlight:        a.inFlight,
		Queued:          a.queued,
		InFlightSeconds: a.inFlightInt.seconds(),
		QueuedSeconds:   a.queuedInt.seconds(),
	}
	a.mu.Unlock()
	return s
}

// counts returns the current counts without touching the integrals.
func (a *accumulator) counts() (inFlight, queued int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inFlight, a.queued
}
