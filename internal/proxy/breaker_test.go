package proxy

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestBreakerLimits(t *testing.T) {
	b := newBreaker(2, 1)
	for i := range 3 {
		if !b.enter() {
			t.Fatalf("enter %d refused; capacity 2 + queue 1 should admit 3", i+1)
		}
	}
	if b.enter() {
		t.Fatal("4th enter admitted beyond capacity+queue")
	}
	if !b.tryAcquire() || !b.tryAcquire() {
		t.Fatal("two slots should be free")
	}
	if b.tryAcquire() {
		t.Fatal("3rd slot acquired beyond capacity")
	}
	b.release()
	if !b.tryAcquire() {
		t.Fatal("released slot not reusable")
	}
	b.leave()
	if !b.enter() {
		t.Fatal("place given back by leave not reusable")
	}
}

func TestBreakerWaiterWokenBySlotRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreaker(1, 2)
		if !b.enter() || !b.tryAcquire() {
			t.Fatal("first request should take the only slot")
		}
		var got atomic.Int32
		for range 2 {
			go func() {
				if !b.enter() {
					t.Error("queue place refused")
					return
				}
				if b.acquire(nil, time.After(time.Hour)) {
					got.Add(1)
				}
			}()
		}
		synctest.Wait()
		if got.Load() != 0 {
			t.Fatal("a waiter got a slot while it was held")
		}
		b.release()
		synctest.Wait()
		if n := got.Load(); n != 1 {
			t.Fatalf("one release woke %d waiters into slots, want 1", n)
		}
		b.release()
		synctest.Wait()
		if n := got.Load(); n != 2 {
			t.Fatalf("second release: %d waiters have slots, want 2", n)
		}
	})
}

func TestBreakerWaitTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreaker(1, 1)
		b.tryAcquire()
		start := time.Now()
		if b.acquire(nil, time.After(250*time.Millisecond)) {
			t.Fatal("acquired a slot that was never released")
		}
		if waited := time.Since(start); waited != 250*time.Millisecond {
			t.Fatalf("waited %s, want exactly the 250ms timeout", waited)
		}
	})
}

func TestBreakerWaitCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreaker(1, 1)
		b.tryAcquire()
		cancel := make(chan struct{})
		done := make(chan bool)
		go func() { done <- b.acquire(cancel, nil) }()
		synctest.Wait()
		close(cancel)
		if <-done {
			t.Fatal("cancelled wait reported a slot")
		}
	})
}

// TestBreakerConcurrent hammers the breaker from many goroutines: the cap
// must hold at every instant, and every place and slot must come back.
func TestBreakerConcurrent(t *testing.T) {
	const (
		capacity = 4
		depth    = 8
		workers  = 64
		rounds   = 500
	)
	b := newBreaker(capacity, depth)
	var holding, maxHolding, served, refused atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				if !b.enter() {
					refused.Add(1)
					continue
				}
				if !b.tryAcquire() && !b.acquire(nil, time.After(5*time.Second)) {
					t.Error("queued request never got a slot")
					b.leave()
					continue
				}
				n := holding.Add(1)
				for {
					m := maxHolding.Load()
					if n <= m || maxHolding.CompareAndSwap(m, n) {
						break
					}
				}
				served.Add(1)
				holding.Add(-1)
				b.release()
				b.leave()
			}
		})
	}
	wg.Wait()
	if m := maxHolding.Load(); m > capacity {
		t.Fatalf("%d requests held slots at once, cap is %d", m, capacity)
	}
	if p, f := b.pending.Load(), b.inFlight.Load(); p != 0 || f != 0 {
		t.Fatalf("leaked places/slots: pending=%d inFlight=%d", p, f)
	}
	if served.Load()+refused.Load() != workers*rounds {
		t.Fatalf("served %d + refused %d != %d", served.Load(), refused.Load(), workers*rounds)
	}
	t.Logf("served %d, refused %d, max concurrent %d", served.Load(), refused.Load(), maxHolding.Load())
}

func BenchmarkBreaker(b *testing.B) {
	for _, bc := range []struct {
		name     string
		capacity int
	}{{"uncontended", 1 << 20}, {"contended-cap4", 4}} {
		b.Run(bc.name, func(b *testing.B) {
			br := newBreaker(bc.capacity, 1<<20)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !br.enter() {
						continue
					}
					if !br.tryAcquire() && !br.acquire(nil, nil) {
						b.Error("no slot")
					}
					br.release()
					br.leave()
				}
			})
		})
	}
}
