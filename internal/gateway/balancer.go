package gateway

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/flint-dev/flint/internal/platform"
)

// backend is one ready replica as this gateway sees it: its own count of
// requests it has in flight there, and a mark set when the replica refused a
// request for capacity (another gateway may be filling it).
type backend struct {
	platform.Endpoint
	inFlight  atomic.Int64
	fullUntil atomic.Int64 // unix nanos; a refusal keeps the replica out of picks until then
}

// hasRoom reports whether the replica can likely take a request: below the
// agent's cap by our own count, and not recently refusing.
func (b *backend) hasRoom(concurrency int64, now int64) bool {
	if concurrency > 0 && b.inFlight.Load() >= concurrency {
		return false
	}
	return b.fullUntil.Load() <= now
}

// backendSet is an immutable snapshot of an agent's ready replicas. It is
// swapped atomically when the platform reports a change, so picking a
// replica takes no lock.
type backendSet struct {
	backends []*backend
	changed  <-chan struct{}
}

// stale reports whether the platform has changed the endpoints since this
// snapshot was taken.
func (s *backendSet) stale() bool {
	select {
	case <-s.changed:
		return true
	default:
		return false
	}
}

// rebuild makes a snapshot for eps, carrying each surviving replica's
// counters over from prev so in-flight accounting survives the change.
func rebuild(prev *backendSet, eps []platform.Endpoint, changed <-chan struct{}) *backendSet {
	old := map[string]*backend{}
	if prev != nil {
		for _, b := range prev.backends {
			old[b.Addr] = b
		}
	}
	s := &backendSet{backends: make([]*backend, len(eps)), changed: changed}
	for i, ep := range eps {
		if b, ok := old[ep.Addr]; ok && b.Endpoint == ep {
			s.backends[i] = b
			continue
		}
		s.backends[i] = &backend{Endpoint: ep}
	}
	return s
}

// pick chooses a replica by power of two choices on this gateway's
// in-flight counts, among replicas with room that were not already tried
// for this request. It returns nil when none has room.
func (s *backendSet) pick(concurrency int64, tried []*backend) *backend {
	now := time.Now().UnixNano()
	n := len(s.backends)
	var a, b *backend
	// Two random probes find a candidate in the common case without
	// scanning; the scan below covers a mostly-full set.
	if n > 0 {
		for range 2 {
			c := s.backends[rand.IntN(n)]
			if c == a || !c.hasRoom(concurrency, now) || contains(tried, c) {
				continue
			}
			if a == nil {
				a = c
			} else {
				b = c
			}
		}
	}
	if a == nil {
		start := 0
		if n > 0 {
			start = rand.IntN(n)
		}
		for i := range n {
			c := s.backends[(start+i)%n]
			if c.hasRoom(concurrency, now) && !contains(tried, c) {
				if a == nil {
					a = c
				} else {
					b = c
					break
				}
			}
		}
	}
	if b != nil && b.inFlight.Load() < a.inFlight.Load() {
		return b
	}
	return a
}

func contains(bs []*backend, b *backend) bool {
	for _, x := range bs {
		if x == b {
			return true
		}
	}
	return false
}
