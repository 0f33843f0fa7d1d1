package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/autoscaler/sim"
)

// replays holds every shipped trace replayed once per test binary; the
// results are read-only.
var replays = sync.OnceValues(func() (map[string]*sim.Result, error) {
	trs, err := embeddedTraces()
	if err != nil {
		return nil, err
	}
	out := map[string]*sim.Result{}
	for _, tr := range trs {
		res, err := sim.Run(tr, sim.Options{})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tr.Name, err)
		}
		out[tr.Name] = res
	}
	for _, name := range []string{"step", "burst", "sawtooth", "diurnal"} {
		if out[name] == nil {
			return nil, fmt.Errorf("trace %s is missing", name)
		}
	}
	return out, nil
})

func replayAll(t *testing.T) map[string]*sim.Result {
	t.Helper()
	out, err := replays()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTraceInvariants checks, at every tick of every trace, the rules that
// hold whatever the load.
func TestTraceInvariants(t *testing.T) {
	for name, res := range replayAll(t) {
		tr := res.Trace
		for _, p := range res.Points {
			d := p.Decision
			if d.Desired < tr.MinReplicas || d.Desired > tr.MaxReplicas {
				t.Errorf("%s t=%v: desired %d outside [%d, %d]", name, p.T, d.Desired, tr.MinReplicas, tr.MaxReplicas)
			}
			if d.Panic && d.Desired < d.Current {
				t.Errorf("%s t=%v: scaled down %d → %d while panicking", name, p.T, d.Current, d.Desired)
			}
			if d.Desired == 0 && (p.Held > 0 || p.InFlight > 0) {
				t.Errorf("%s t=%v: desired 0 with %d held and %d in flight", name, p.T, p.Held, p.InFlight)
			}
			if d.Desired < d.Current && d.Desired < d.Current/2 {
				t.Errorf("%s t=%v: %d → %d is more than halving", name, p.T, d.Current, d.Desired)
			}
		}
	}
}

// TestStepReachesCapacityWithinTwoTicks: after a 10x step, the Decider
// asks for enough replicas within two ticks, and they carry the load as soon
// as they have started.
func TestStepReachesCapacityWithinTwoTicks(t *testing.T) {
	res := replayAll(t)["step"]
	tr, s := res.Trace, res.Summary
	if len(s.Marks) != 1 || !s.Marks[0].Reached {
		t.Fatalf("capacity never caught up with the step: %+v", s.Marks)
	}
	m := s.Marks[0]
	t.Logf("10x step: desired enough after %v, capacity after %v; %.2f%% refused", m.TimeToDesired, m.TimeToCapacity, 100*s.RejectedFraction)
	if m.TimeToDesired > 2*tr.Tick {
		t.Errorf("desired caught up after %v, want within two ticks (%v)", m.TimeToDesired, 2*tr.Tick)
	}
	if bound := 2*tr.Tick + tr.Startup + sim.DefaultResolution; m.TimeToCapacity > bound {
		t.Errorf("capacity caught up after %v, want within two ticks + startup (%v)", m.TimeToCapacity, bound)
	}
	if s.RejectedFraction > 0.03 {
		t.Errorf("%.2f%% of requests refused, want under 3%% (only while replicas start)", 100*s.RejectedFraction)
	}
}

// stepNeeded is what the 10x step needs at target: ceil(100 / 7) = 15
// replicas. The goal is at most 10% over that: 16.
const (
	stepNeeded  = 15
	stepAtMost  = 16
	stepStart   = 60 * time.Second
	stepEnd     = 180 * time.Second
	backlogTail = 6 * time.Second // a panic window: the backlog still in the demand
)

// stepCounts splits the desired counts during the step: through the
// backlog (from the step until a panic window after the gateway last held
// or refused a request) and after it.
func stepCounts(res *sim.Result) (backlogPeak, laterLow, laterPeak int32, lastHeld time.Duration) {
	for _, p := range res.Points {
		if p.T >= stepStart && p.T < stepEnd && (p.Held > 0 || p.Rejected > 0) {
			lastHeld = p.T
		}
	}
	laterLow = math.MaxInt32
	for _, p := range res.Points {
		switch {
		case p.T < stepStart || p.T >= stepEnd:
		case p.T <= lastHeld+backlogTail:
			backlogPeak = max(backlogPeak, p.Decision.Desired)
		default:
			laterLow = min(laterLow, p.Decision.Desired)
			laterPeak = max(laterPeak, p.Decision.Desired)
		}
	}
	return backlogPeak, laterLow, laterPeak, lastHeld
}

// TestStepSettlesAtTheNeededCount: the 10x step needs 15 replicas at target,
// and the count may overshoot that by at most 10% (16) for the whole step.
// Held requests are counted once, when they arrive, so the backlog built
// while replicas start inflates the count neither while it is held nor again
// while it drains (before, the step went to 23). After the backlog the
// Poisson load runs 5-15% over its mean over some 6s panic windows; panic
// mode raises the count on them only while the gateway holds or refuses
// requests or by 20% or more (before, it followed each rise and the count
// crept to 16 and 17), so it stays at the need.
func TestStepSettlesAtTheNeededCount(t *testing.T) {
	res := replayAll(t)["step"]
	tr := res.Trace
	if needed := int32(math.Ceil(100 / float64(tr.Concurrency*70/100))); needed != stepNeeded {
		t.Fatalf("the step needs %d replicas at target, the bounds below assume %d", needed, stepNeeded)
	}
	backlogPeak, laterLow, laterPeak, lastHeld := stepCounts(res)
	t.Logf("10x step: %d replicas through the backlog (until %v), %d to %d after; %d needed", backlogPeak, lastHeld, laterLow, laterPeak, stepNeeded)
	if backlogPeak > stepAtMost || laterPeak > stepAtMost {
		t.Errorf("the step drove the count to %d through the backlog and %d after, want at most %d (10%% over the %d needed)", backlogPeak, laterPeak, stepAtMost, stepNeeded)
	}
	if backlogPeak < stepNeeded {
		t.Errorf("the count reached only %d through the backlog, want the %d needed", backlogPeak, stepNeeded)
	}
	if laterLow < stepNeeded {
		t.Errorf("the count fell to %d after the backlog while the load lasted, want at least the %d needed", laterLow, stepNeeded)
	}
}

// TestStepOvershootAcrossSeeds replays the step with 20 different Poisson
// draws: the bound is not a property of one lucky draw. On at most one
// draw may the count go above 16: in one draw (seed 3) 659 requests arrive
// in 6s while the gateway still holds the backlog, 10% over the mean, and
// the count follows them to 17. Before panic mode told noise from
// shortage, 7 of these 20 draws went to 17.
func TestStepOvershootAcrossSeeds(t *testing.T) {
	trs, err := embeddedTraces()
	if err != nil {
		t.Fatal(err)
	}
	var step sim.Trace
	for _, tr := range trs {
		if tr.Name == "step" {
			step = *tr
		}
	}
	over := 0
	for seed := range uint64(20) {
		tr := step
		tr.Seed = seed + 1
		res, err := sim.Run(&tr, sim.Options{})
		if err != nil {
			t.Fatal(err)
		}
		backlogPeak, _, laterPeak, _ := stepCounts(res)
		if max(backlogPeak, laterPeak) > stepAtMost {
			over++
			t.Logf("seed %d: %d through the backlog, %d after", tr.Seed, backlogPeak, laterPeak)
		}
	}
	if over > 1 {
		t.Errorf("%d of 20 draws of the step went above %d replicas, want at most 1", over, stepAtMost)
	}
}

// TestStepAdmittedOnlyComparison documents why held and refused requests
// count: a scaler that only sees admitted (capped) in-flight requests grows
// by at most the ratio of target to concurrency per tick and refuses far more.
func TestStepAdmittedOnlyComparison(t *testing.T) {
	trs, _ := embeddedTraces()
	for _, tr := range trs {
		if tr.Name != "step" {
			continue
		}
		flint, _ := sim.Run(tr, sim.Options{})
		admitted, _ := sim.Run(tr, sim.Options{AdmittedOnly: true})
		f, a := flint.Summary, admitted.Summary
		t.Logf("admitted-only: capacity after %v, %.2f%% refused", a.Marks[0].TimeToCapacity, 100*a.RejectedFraction)
		if a.RejectedFraction < 5*f.RejectedFraction || a.Marks[0].TimeToCapacity < 5*f.Marks[0].TimeToCapacity {
			t.Errorf("admitted-only view is not clearly worse: %.2f%% vs %.2f%% refused, %v vs %v to capacity",
				100*a.RejectedFraction, 100*f.RejectedFraction, a.Marks[0].TimeToCapacity, f.Marks[0].TimeToCapacity)
		}
	}
}

// TestBurstDoesNotFlap: bursts every 30s must not make the replica count go
// up and down with each burst.
func TestBurstDoesNotFlap(t *testing.T) {
	res := replayAll(t)["burst"]
	s := res.Summary
	burstsEnd := 480 * time.Second
	downs := 0
	for _, p := range res.Points {
		if p.T < burstsEnd && p.Decision.Desired < p.Decision.Current {
			downs++
		}
	}
	t.Logf("burst: %d scale-ups, %d scale-downs (%d while bursts continue), %.2f%% refused", s.ScaleUps, s.ScaleDowns, downs, 100*s.RejectedFraction)
	// 16 bursts. The cold first one sets the count; from the second on
	// it holds, and no request is refused.
	const firstBurstEnd = 30 * time.Second
	var settled int32 = -1
	for _, p := range res.Points {
		if p.T < firstBurstEnd || p.T >= burstsEnd {
			continue
		}
		if settled < 0 {
			settled = p.Decision.Desired
		}
		if p.Decision.Desired != settled {
			t.Errorf("t=%v: count %d, want it steady at %d from the second burst on", p.T, p.Decision.Desired, settled)
		}
		if p.Rejected > 0 {
			t.Errorf("t=%v: %.1f requests/s refused, want none after the cold first burst", p.T, p.Rejected)
		}
	}
	if downs > 1 {
		t.Errorf("%d scale-downs while bursts continue, want at most 1", downs)
	}
	if s.ScaleUps+s.ScaleDowns > 10 {
		t.Errorf("%d replica changes in all, want at most 10", s.ScaleUps+s.ScaleDowns)
	}
	if s.RejectedFraction > 0.02 {
		t.Errorf("%.2f%% refused, want under 2%%", 100*s.RejectedFraction)
	}
	// The bursts are 63 concurrent at most: 9 replicas at target.
	if s.PeakReplicas > 9 {
		t.Errorf("peaked at %d replicas, want at most the 9 a burst needs at target", s.PeakReplicas)
	}
	if last := res.Points[len(res.Points)-1]; last.Decision.Desired != 0 {
		t.Errorf("ended at %d replicas, want 0 after two idle minutes", last.Decision.Desired)
	}
}

func TestSawtoothAndDiurnal(t *testing.T) {
	all := replayAll(t)
	for _, name := range []string{"sawtooth", "diurnal"} {
		s := all[name].Summary
		t.Logf("%s: %d scale-ups, %d scale-downs, %d cold starts, %.2f%% refused", name, s.ScaleUps, s.ScaleDowns, s.Pokes, 100*s.RejectedFraction)
		if s.RejectedFraction > 0.01 {
			t.Errorf("%s: %.2f%% refused, want under 1%%", name, 100*s.RejectedFraction)
		}
	}
	// The sawtooth peaks at 80 concurrent (12 replicas at target), the
	// diurnal curve at 140 (20): neither may overshoot by more than 10%.
	if s := all["sawtooth"].Summary; s.PeakReplicas > 12 || s.RejectedFraction > 0.001 {
		t.Errorf("sawtooth: peak %d replicas and %.2f%% refused, want at most 12 and none", s.PeakReplicas, 100*s.RejectedFraction)
	}
	if s := all["diurnal"].Summary; s.PeakReplicas > 22 {
		t.Errorf("diurnal: peak %d replicas, want at most 22", s.PeakReplicas)
	}
	// Each of the two nights scales to zero, and each morning wakes by a
	// poke (plus the first request of the trace).
	if s := all["diurnal"].Summary; s.Pokes != 3 {
		t.Errorf("diurnal: %d cold starts, want 3 (start and two mornings)", s.Pokes)
	}
}

// TestCommandWritesFiles runs the command end to end on one trace.
func TestCommandWritesFiles(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "tiny.trace")
	if err := os.WriteFile(trace, []byte("duration 30s\nrate 0s 20s 5\nmark 5s start\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-trace", trace, "-out", dir, "-compare"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"autoscaling-tiny.csv", "autoscaling-tiny.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	csv, _ := os.ReadFile(filepath.Join(dir, "autoscaling-tiny.csv"))
	if lines := strings.Count(string(csv), "\n"); lines != 1+16 {
		t.Errorf("CSV has %d lines, want a header and 16 ticks (0s..30s)", lines)
	}
	if !strings.Contains(out.String(), "mark start") {
		t.Errorf("summary missing the mark:\n%s", out.String())
	}
	if err := run([]string{"-out", dir}, &out); err == nil {
		t.Error("neither -trace nor -all accepted")
	}
}
