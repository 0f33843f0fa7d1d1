package autoscaler

import (
	"math"
	"time"
)

// window averages samples over a sliding time window made of fixed-size
// buckets. Each bucket keeps a sum and a count, so the average weighs every
// sample equally and a bucket nobody wrote to (a tick that had no data, or the
// gap between 2s ticks in 1s buckets) counts as absent rather than as zero:
// missing data must never look like idleness.
type window struct {
	bucket  time.Duration
	buckets []bucketSlot
}

type bucketSlot struct {
	index int64 // which bucket of absolute time this slot currently holds
	sum   float64
	count int
}

// newWindow returns a window that can answer averages over up to size.
func newWindow(size, bucket time.Duration) *window {
	if bucket <= 0 {
		bucket = time.Second
	}
	n := int(math.Ceil(float64(size) / float64(bucket)))
	w := &window{bucket: bucket, buckets: make([]bucketSlot, max(n, 1))}
	for i := range w.buckets {
		w.buckets[i].index = math.MinInt64 // never matches a real bucket
	}
	return w
}

func (w *window) indexOf(t time.Time) int64 { return t.UnixNano() / int64(w.bucket) }

func (w *window) slot(index int64) *bucketSlot {
	n := int64(len(w.buckets))
	return &w.buckets[((index%n)+n)%n]
}

// record adds v at time t.
func (w *window) record(t time.Time, v float64) {
	i := w.indexOf(t)
	s := w.slot(i)
	if s.index != i {
		*s = bucketSlot{index: i}
	}
	s.sum += v
	s.count++
}

// average returns the mean of the samples recorded in (now-over, now]; ok is
// false when there are none. over is capped at the window's size.
func (w *window) average(now time.Time, over time.Duration) (avg float64, ok bool) {
	cur := w.indexOf(now)
	n := min(int64(math.Ceil(float64(over)/float64(w.bucket))), int64(len(w.buckets)))
	var sum float64
	var count int
	for i := cur - n + 1; i <= cur; i++ {
		if s := w.slot(i); s.index == i {
			sum += s.sum
			count += s.count
		}
	}
	if count == 0 {
		return 0, false
	}
	return sum / float64(count), true
}
