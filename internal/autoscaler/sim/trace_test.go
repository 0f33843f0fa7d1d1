package sim

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseTrace(t *testing.T) {
	src := `# a comment
name demo
description two shapes that add up
duration 90s
concurrency 4      # trailing comment
target 3
max-replicas 8
startup 500ms
scrape-failure 0.1
rate 0s 60s 10
ramp 30s 90s 0 60
pulse 0s 90s 0 100 1s 10s
mark 30s ramp
`
	tr, err := ParseTrace("file", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Name != "demo" || tr.Duration != 90*time.Second || tr.Concurrency != 4 || tr.Target != 3 ||
		tr.MaxReplicas != 8 || tr.Startup != 500*time.Millisecond || tr.ScrapeFailure != 0.1 {
		t.Errorf("settings %+v", tr)
	}
	if tr.Tick != 2*time.Second || tr.HoldTimeout != 10*time.Second {
		t.Errorf("defaults not applied: tick %v hold-timeout %v", tr.Tick, tr.HoldTimeout)
	}
	if len(tr.Marks) != 1 || tr.Marks[0].At != 30*time.Second || tr.Marks[0].Label != "ramp" {
		t.Errorf("marks %+v", tr.Marks)
	}
	for _, c := range []struct {
		at   time.Duration
		want float64
	}{
		{5 * time.Second, 10},         // rate only
		{500 * time.Millisecond, 110}, // rate + pulse
		{65 * time.Second, 35},        // ramp past halfway, rate ended
		{45 * time.Second, 10 + 15},   // rate + a quarter of the ramp
		{90 * time.Second, 0},         // everything ended
		{time.Duration(-1), 0},        // before the start
		{31*time.Second + 500*time.Millisecond, 10 + 1.5},
	} {
		if got := tr.Rate(c.at); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Rate(%v) = %v, want %v", c.at, got, c.want)
		}
	}
}

func TestShapes(t *testing.T) {
	sine := Shape{Kind: "sine", From: 0, To: time.Hour, A: 10, B: 20, Period: 40 * time.Second}
	saw := Shape{Kind: "sawtooth", From: 0, To: time.Hour, A: 5, B: 25, Period: 10 * time.Second}
	tr := &Trace{Load: []Shape{sine}}
	if got := tr.Rate(10 * time.Second); math.Abs(got-30) > 1e-9 {
		t.Errorf("sine at a quarter period = %v, want 30", got)
	}
	if got := tr.Rate(30 * time.Second); got != 0 {
		t.Errorf("sine trough = %v, want 0 (negative rates clip)", got)
	}
	tr.Load = []Shape{saw}
	if got := tr.Rate(25 * time.Second); math.Abs(got-15) > 1e-9 {
		t.Errorf("sawtooth halfway = %v, want 15", got)
	}
}

func TestParseTraceErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"bogus 1", "file:1: bogus: unknown keyword"},
		{"\nrate 0s 10s", "file:2: rate: missing field 3"},
		{"rate 0s ten 5", "file:1: rate: field 2"},
		{"concurrency 4 5", `unexpected field "5"`},
		{"rate 10s 5s 1", "the end must be after the start"},
		{"concurrency 0", "concurrency (0) must be positive"},
		{"min-replicas 5\nmax-replicas 2", "max-replicas (2) must be at least 1 and min-replicas (5)"},
		{"sine 0s 10s 1 1 0s", "sine needs a positive period"},
	}
	for _, tt := range tests {
		_, err := ParseTrace("file", strings.NewReader(tt.src))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseTrace(%q) = %v, want an error containing %q", tt.src, err, tt.want)
		}
	}
}
