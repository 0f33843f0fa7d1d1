package autoscaler

import "time"

// peakWindow answers "what is the highest value recorded within the last
// d?" in amortised constant time: a monotonic deque keeps only values that
// can still become the maximum (each newer than and below the one before).
type peakWindow struct {
	entries []peakEntry
	size    time.Duration
}

type peakEntry struct {
	t time.Time
	v int32
}

func newPeakWindow(size time.Duration) *peakWindow { return &peakWindow{size: size} }

func (w *peakWindow) record(t time.Time, v int32) {
	for n := len(w.entries); n > 0 && w.entries[n-1].v <= v; n-- {
		w.entries = w.entries[:n-1]
	}
	w.entries = append(w.entries, peakEntry{t, v})
	w.expire(t)
}

// max returns the highest value recorded in (now-size, now], or 0.
func (w *peakWindow) max(now time.Time) int32 {
	w.expire(now)
	if len(w.entries) == 0 {
		return 0
	}
	return w.entries[0].v
}

func (w *peakWindow) expire(now time.Time) {
	i := 0
	for i < len(w.entries) && now.Sub(w.entries[i].t) >= w.size {
		i++
	}
	w.entries = w.entries[i:]
}
