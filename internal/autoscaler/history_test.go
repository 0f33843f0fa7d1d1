package autoscaler

import (
	"testing"

	"github.com/flint-dev/flint/internal/wire"
)

// TestHistoryGrowsToItsSize: the buffer holds what was added, grows as
// decisions come, and wraps at its size, oldest first throughout.
func TestHistoryGrowsToItsSize(t *testing.T) {
	for _, size := range []int{1, 4, 5, 64} {
		h := newHistory(size)
		if n := cap(h.buf); n != 0 {
			t.Errorf("size %d: %d slots before any decision, want none", size, n)
		}
		for i := range 3 * size {
			h.add(wire.Decision{Time: at(float64(i)), Desired: int32(i)})
			got := h.list()
			if want := min(i+1, size); len(got) != want {
				t.Fatalf("size %d after %d: %d decisions, want %d", size, i+1, len(got), want)
			}
			for j, d := range got {
				if want := int32(i + 1 - len(got) + j); d.Desired != want {
					t.Fatalf("size %d after %d: history[%d] = %d, want %d", size, i+1, j, d.Desired, want)
				}
			}
			if cap(h.buf) > size {
				t.Fatalf("size %d: %d slots", size, cap(h.buf))
			}
		}
	}
}
