package ui

import (
	"testing"
	"time"
)

// TestRecorderIdleAgentHoldsOneRun: an agent whose points repeat is kept
// as one run whatever the number of samples, and reads back as one point
// per sample with each sample's own Seq and Time; an agent whose points
// change keeps each, and both keep only the last keep samples.
func TestRecorderIdleAgentHoldsOneRun(t *testing.T) {
	src := &fakeSource{}
	const keep = 50
	r := NewRecorder(src.get, time.Second, keep)
	start := time.Unix(1000, 0)
	now := start
	r.now = func() time.Time { return now }
	var requests uint64
	for i := range 3 * keep {
		if i == 2*keep {
			requests += 5 // one burst for the idle agent
		}
		src.set(AgentSample{Namespace: "default", Name: "idle", Replicas: 1, Ready: 1, RequestsTotal: requests},
			AgentSample{Namespace: "default", Name: "busy", Replicas: 1, Ready: 1, InFlight: int64(i)})
		r.Sample()
		now = now.Add(time.Second)
	}
	busy, idle := r.agents["default/busy"], r.agents["default/idle"]
	if n := len(idle.runs); n > 3 {
		t.Errorf("idle agent: %d runs for %d samples, want at most 3 (idle, the burst, idle)", n, 3*keep)
	}
	if n := len(busy.runs); n != keep {
		t.Errorf("busy agent: %d runs, want one per kept sample (%d)", n, keep)
	}
	for _, a := range r.State(0).Agents {
		if len(a.Points) != keep {
			t.Fatalf("%s: %d points, want the last %d", a.Name, len(a.Points), keep)
		}
		for i, p := range a.Points {
			seq := uint64(2*keep + 1 + i)
			if p.Seq != seq || p.Time != start.Add(time.Duration(seq-1)*time.Second).UnixMilli() {
				t.Fatalf("%s point %d: seq %d time %d, want seq %d at %s", a.Name, i, p.Seq, p.Time, seq,
					start.Add(time.Duration(seq-1)*time.Second))
			}
			if a.Name == "busy" && p.InFlight != int64(seq-1) {
				t.Fatalf("busy point %d: in flight %d, want %d", i, p.InFlight, seq-1)
			}
			if a.Name == "idle" && (p.RequestRate != 0) != (i == 0) {
				t.Fatalf("idle point %d: rate %v, want 5/s at the burst only", i, p.RequestRate)
			}
		}
	}
	if got := r.State(3*keep - 2).Agents[0].Points; len(got) != 2 || got[0].Seq != 3*keep-1 {
		t.Fatalf("points since %d: %+v, want the last two", 3*keep-2, got)
	}
}
