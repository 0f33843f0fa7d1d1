package autoscaler

import "sync"

// history is a ring buffer of an agent's recent distinct decisions. A
// decision with the same outcome as the previous one (same desired, current,
// reason and panic state) replaces it instead of taking a new slot, so a
// steady agent's history still shows the scale events from minutes ago while
// its newest entry carries the latest numbers.
type history struct {
	mu   sync.Mutex
	buf  []Decision
	next int
	full bool
}

func newHistory(size int) *history { return &history{buf: make([]Decision, max(size, 1))} }

func (h *history) add(d Decision) {
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

func (h *history) lastLocked() (Decision, bool) {
	if !h.full && h.next == 0 {
		return Decision{}, false
	}
	return h.buf[(h.next-1+len(h.buf))%len(h.buf)], true
}

// list returns the decisions oldest first.
func (h *history) list() []Decision {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.full {
		return append([]Decision(nil), h.buf[:h.next]...)
	}
	return append(append([]Decision(nil), h.buf[h.next:]...), h.buf[:h.next]...)
}

func sameOutcome(a, b Decision) bool {
	return a.Desired == b.Desired && a.Current == b.Current && a.Reason == b.Reason && a.Panic == b.Panic
}
