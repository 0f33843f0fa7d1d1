package sim

import (
	"container/heap"
	"slices"
	"time"

	"github.com/flint-dev/flint/internal/wire"
)

// replica is one simulated replica with its sidecar.
type replica struct {
	readyAt  time.Duration
	draining bool // removed by a scale-down: finishes its work, takes no more
	busy     finishHeap
	queue    []time.Duration // service times of requests waiting for a slot
	stats    wire.Stats      // what its sidecar would report
	scraped  *wire.Stats     // the autoscaler's previous snapshot
}

func (r *replica) ready(now time.Duration) bool { return !r.draining && now >= r.readyAt }

func (r *replica) load() int { return r.busy.Len() + len(r.queue) }

// admit takes a request needing service if there is a free slot or queue
// space.
func (r *replica) admit(now, service time.Duration, concurrency, queue int) bool {
	switch {
	case r.busy.Len() < concurrency:
		heap.Push(&r.busy, now+service)
		r.stats.RequestsTotal++
	case len(r.queue) < queue:
		r.queue = append(r.queue, service)
	default:
		return false
	}
	return true
}

// advance completes the requests that finished by now and moves queued ones
// into freed slots.
func (r *replica) advance(now time.Duration, concurrency int) {
	for r.busy.Len() > 0 && r.busy[0] <= now {
		heap.Pop(&r.busy)
	}
	for len(r.queue) > 0 && r.busy.Len() < concurrency {
		heap.Push(&r.busy, now+r.queue[0])
		r.queue = r.queue[1:]
		r.stats.RequestsTotal++
	}
}

// integrate accumulates the sidecar's counters over dt, as the real sidecar
// does continuously.
func (r *replica) integrate(dt time.Duration) {
	s := dt.Seconds()
	r.stats.UptimeSeconds += s
	r.stats.InFlight = int64(r.busy.Len())
	r.stats.Queued = int64(len(r.queue))
	r.stats.InFlightSeconds += float64(r.busy.Len()) * s
	r.stats.QueuedSeconds += float64(len(r.queue)) * s
}

// finishHeap holds the finish times of in-flight requests, earliest first.
type finishHeap []time.Duration

func (h finishHeap) Len() int           { return len(h) }
func (h finishHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h finishHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *finishHeap) Push(x any)        { *h = append(*h, x.(time.Duration)) }
func (h *finishHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// fleet is the set of replicas of the simulated agent.
type fleet struct {
	concurrency, queue int
	startup            time.Duration
	replicas           []*replica
}

// current is the number of replicas asked for (starting or ready).
func (f *fleet) current() int32 {
	n := int32(0)
	for _, r := range f.replicas {
		if !r.draining {
			n++
		}
	}
	return n
}

// readyReplicas returns the replicas that take requests.
func (f *fleet) readyReplicas(now time.Duration) []*replica {
	var out []*replica
	for _, r := range f.replicas {
		if r.ready(now) {
			out = append(out, r)
		}
	}
	return out
}

// scale adds starting replicas or removes replicas: those still starting
// first (they serve nobody), then the least loaded ready ones, which drain.
func (f *fleet) scale(now time.Duration, desired int32) {
	cur := f.current()
	for ; cur < desired; cur++ {
		f.replicas = append(f.replicas, &replica{readyAt: now + f.startup})
	}
	if cur <= desired {
		return
	}
	live := slices.DeleteFunc(slices.Clone(f.replicas), func(r *replica) bool { return r.draining })
	slices.SortStableFunc(live, func(a, b *replica) int {
		aReady, bReady := a.ready(now), b.ready(now)
		switch {
		case aReady != bReady && !aReady:
			return -1
		case aReady != bReady:
			return 1
		case !aReady:
			return int(b.readyAt - a.readyAt) // the latest to start goes first
		}
		return a.load() - b.load()
	})
	for _, r := range live[:cur-desired] {
		r.draining = true
	}
}

// route admits a request on the least-loaded ready replica that has room.
func (f *fleet) route(now, service time.Duration) bool {
	var best *replica
	for _, r := range f.replicas {
		if r.ready(now) && r.load() < f.concurrency+f.queue && (best == nil || r.load() < best.load()) {
			best = r
		}
	}
	return best != nil && best.admit(now, service, f.concurrency, f.queue)
}

// advance moves every replica to now and forgets drained replicas that are
// done.
func (f *fleet) advance(now, dt time.Duration) {
	for _, r := range f.replicas {
		r.advance(now, f.concurrency)
		if now >= r.readyAt {
			r.integrate(dt)
		}
	}
	f.replicas = slices.DeleteFunc(f.replicas, func(r *replica) bool { return r.draining && r.load() == 0 })
}

// inFlight and queued total the fleet's requests, draining replicas included.
func (f *fleet) totals() (inFlight, queued int) {
	for _, r := range f.replicas {
		inFlight += r.busy.Len()
		queued += len(r.queue)
	}
	return inFlight, queued
}

// heldRequest is one request the gateway is holding.
type heldRequest struct {
	arrived, service time.Duration
}

// gateway holds what no replica can take and counts what it refuses.
type gateway struct {
	held                []heldRequest
	requests, rejected  uint64
	lastRequest         time.Duration
	seenRequest         bool
	waitSum, waitMax    time.Duration
	waited              uint64
	holdQueue           int
	holdTimeout         time.Duration
	rejectedSinceSample uint64
	arrivedSinceSample  uint64
}

func (g *gateway) arrive(now, service time.Duration, f *fleet) {
	g.requests++
	g.arrivedSinceSample++
	g.lastRequest, g.seenRequest = now, true
	if len(g.held) == 0 && f.route(now, service) {
		return
	}
	if len(g.held) >= g.holdQueue {
		g.reject()
		return
	}
	g.held = append(g.held, heldRequest{arrived: now, service: service})
}

func (g *gateway) reject() {
	g.rejected++
	g.rejectedSinceSample++
}

// dispatch forwards held requests, oldest first, and refuses those held too
// long.
func (g *gateway) dispatch(now time.Duration, f *fleet) {
	i := 0
	for ; i < len(g.held); i++ {
		h := g.held[i]
		if now-h.arrived >= g.holdTimeout {
			g.reject()
			continue
		}
		if !f.route(now, h.service) {
			break
		}
		wait := now - h.arrived
		g.waitSum += wait
		g.waitMax = max(g.waitMax, wait)
		g.waited++
	}
	// Requests behind the first one that could not be routed are younger
	// (FIFO), so none of them has timed out either.
	g.held = g.held[i:]
}
