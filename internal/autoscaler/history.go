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
type history struct {
	mu   sync.Mutex
	buf  []wire.Decision
	next int
	full bool
}

func newHistory(size int) *history { return &history{buf: make([]wire.Decision, max(size, 1))} }

func (h *history) add(d wire.Decision) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if last, ok := h.lastLocked(); ok && sameOutcome(last, d) {
		h.buf[(h.next-1+len(h.buf))%len(h.buf)] = d
		return
	}
	h.buf[h.next] = d
	h.next = (h.next + 1) % len(h.buf)
	h.full = h.full || h.next == 0
}

func (h *history) lastLocked() (wire.Decision, bool) {
	if !h.full && h.next == 0 {
		return wire.Decision{}, false
	}
	return h.buf[(h.next-1+len(h.buf))%len(h.buf)], true
}

// list returns the decisions oldest first.
func (h *history) list() []wire.Decision {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.full {
		return append([]wire.Decision(nil), h.buf[:h.next]...)
	}
	return append(append([]wire.Decision(nil), h.buf[h.next:]...), h.buf[:h.next]...)
}

func sameOutcome(a, b wire.Decision) bool {
	return a.Desired == b.Desired && a.Current == b.Current && a.Reason == b.Reason && a.Panic == b.Panic
}
