package autoscaler

import (
	"sync"

	"github.com/flint-dev/flint/internal/wire"
)

// history is a ring buffer of an agent's recent distinct decisions. A
// decision with the same outcome as the previous one (same desired, current,
// reason and panic state) replaces it instead of taking a new slot, so a
// steady agent's history still shows the scale events from minutes ago while
// its newest entry carries the latest numbers.
//
// The buffer grows to size as distinct decisions come: most agents at rest
// or steady have made a handful, and 64 slots for each of 2,000 agents
// would hold ~13 MiB of zeros.
type history struct {
	mu   sync.Mutex
	size int
	buf  []wire.Decision
	next int
	full bool
}

func newHistory(size int) *history { return &history{size: max(size, 1)} }

func (h *history) add(d wire.Decision) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if last, ok := h.lastLocked(); ok && sameOutcome(last, d) {
		h.buf[(h.next-1+len(h.buf))%len(h.buf)] = d
		return
	}
	if len(h.buf) < h.size {
		if cap(h.buf) == len(h.buf) {
			// Grow by doubling from 4, up to size.
			h.buf = append(make([]wire.Decision, 0, min(h.size, max(4, 2*cap(h.buf)))), h.buf...)
		}
		h.buf = append(h.buf, d)
		h.next = len(h.buf) % h.size
		h.full = len(h.buf) == h.size
		return
	}
	h.buf[h.next] = d
	h.next = (h.next + 1) % len(h.buf)
}

func (h *history) lastLocked() (wire.Decision, bool) {
	if len(h.buf) == 0 {
		return wire.Decision{}, false
	}
	return h.buf[(h.next-1+len(h.buf))%len(h.buf)], true
}

// list returns the decisions oldest first.
func (h *history) list() []wire.Decision {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.full {
		return append([]wire.Decision(nil), h.buf...)
	}
	return append(append([]wire.Decision(nil), h.buf[h.next:]...), h.buf[:h.next]...)
}

func sameOutcome(a, b wire.Decision) bool {
	return a.Desired == b.Desired && a.Current == b.Current && a.Reason == b.Reason && a.Panic == b.Panic
}
