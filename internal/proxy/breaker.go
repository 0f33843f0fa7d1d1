package proxy

import (
	"sync/atomic"
	"time"
)

// breaker enforces the replica's concurrency cap without a lock on the hot
// path, in the style of Knative's queue-proxy breaker: two CAS-guarded
// counters and a channel used only to wake waiters.
//
// A request first takes a place (enter), which bounds holders plus waiters
// at capacity+queueDepth, so overload costs a failed CAS and a 503 rather
// than an ever-growing pile of goroutines. It then takes a slot (tryAcquire,
// or acquire to wait). Capacity is fixed for the sidecar's lifetime, so
// unlike Knative's activator breaker there is no need to pack capacity and
// in-flight into one word.
//
// Waiters are woken roughly in arrival order (blocked channel receivers are
// served FIFO), but a newly arrived request may take a just-freed slot
// before a waiter does; the bounded queue and its timeout keep that benign.
type breaker struct {
	capacity   int64
	maxPending int64

	pending  atomic.Int64 // places taken: slot holders plus waiters
	inFlight atomic.Int64 // slots taken

	// wake carries one token per release. It is buffered so that a release
	// racing with a waiter that has seen "full" but not yet blocked leaves a
	// token behind instead of being lost; a stale token costs a waiter one
	// extra look at the counter.
	wake chan struct{}
}

func newBreaker(capacity, queueDepth int) *breaker {
	return &breaker{
		capacity:   int64(capacity),
		maxPending: int64(capacity) + int64(queueDepth),
		wake:       make(chan struct{}, capacity),
	}
}

// enter takes a place for a request, or reports false when every slot and
// queue place is taken.
func (b *breaker) enter() bool {
	for {
		p := b.pending.Load()
		if p >= b.maxPending {
			return false
		}
		if b.pending.CompareAndSwap(p, p+1) {
			return true
		}
	}
}

// leave gives back the place taken by enter.
func (b *breaker) leave() {
	b.pending.Add(-1)
}

// tryAcquire takes a slot if one is free.
func (b *breaker) tryAcquire() bool {
	for {
		n := b.inFlight.Load()
		if n >= b.capacity {
			return false
		}
		if b.inFlight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// acquire waits for a slot until cancel is closed or timeout fires.
func (b *breaker) acquire(cancel <-chan struct{}, timeout <-chan time.Time) bool {
	for {
		if b.tryAcquire() {
			return true
		}
		select {
		case <-b.wake:
		case <-cancel:
			return false
		case <-timeout:
			return false
		}
	}
}

// release gives back a slot and wakes one waiter, if any.
func (b *breaker) release() {
	b.inFlight.Add(-1)
	select {
	case b.wake <- struct{}{}:
	default:
		// The buffer already holds a token for every slot, so any waiter
		// will find one; nothing is lost by dropping this one.
	}
}
