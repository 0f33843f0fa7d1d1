package autoscaler

import (
	"math"
	"testing"
	"time"
)

func TestWindowAverage(t *testing.T) {
	w := newWindow(60*time.Second, time.Second)
	if _, ok := w.average(at(0), time.Minute); ok {
		t.Fatal("empty window reported an average")
	}
	w.record(at(0), 10)
	w.record(at(2), 20)
	w.record(at(4), 30)
	tests := []struct {
		name   string
		now    float64
		over   time.Duration
		want   float64
		wantOK bool
	}{
		{"all samples", 4, time.Minute, 20, true},
		{"short window sees the latest", 4, 2 * time.Second, 30, true},
		{"gaps are absent, not zero", 4, 4 * time.Second, 25, true},
		{"old samples drop out", 61.5, time.Minute, 25, true},
		{"everything expired", 200, time.Minute, 0, false},
		{"over is capped at the window size", 4, time.Hour, 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := w.average(at(tt.now), tt.over)
			if ok != tt.wantOK || math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("average(%v, %v) = %v, %v; want %v, %v", tt.now, tt.over, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestWindowReusesSlotsAfterWrap(t *testing.T) {
	w := newWindow(3*time.Second, time.Second)
	for i := range 10 {
		w.record(at(float64(i)), float64(i))
	}
	// Only buckets 7, 8 and 9 are still in the window.
	if got, _ := w.average(at(9), 3*time.Second); got != 8 {
		t.Errorf("average after wrap = %v, want 8", got)
	}
}

func TestWindowSeveralSamplesInOneBucket(t *testing.T) {
	w := newWindow(10*time.Second, time.Second)
	w.record(at(1.1), 1)
	w.record(at(1.9), 3)
	w.record(at(2.5), 8)
	if got, _ := w.average(at(2.5), 10*time.Second); got != 4 {
		t.Errorf("average = %v, want 4 (every sample weighs the same)", got)
	}
}
