package sim

import (
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/wire"
)

func constantTrace(rate float64, d time.Duration) *Trace {
	tr := DefaultTrace()
	tr.Name = "constant"
	tr.Duration = d
	tr.Load = []Shape{{Kind: "rate", From: 0, To: d, A: rate}}
	return &tr
}

func TestRunIsDeterministic(t *testing.T) {
	tr := constantTrace(20, 2*time.Minute)
	tr.ScrapeFailure = 0.1
	a, err := Run(tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Run(tr, Options{})
	if a.Summary.String() != b.Summary.String() || len(a.Points) != len(b.Points) {
		t.Errorf("two replays differ:\n%v\n%v", a.Summary, b.Summary)
	}
}

func TestRunSteadyLoadSettlesAtTarget(t *testing.T) {
	// 35 req/s of 1s requests is 35 busy; target 7 → 5 replicas.
	res, err := Run(constantTrace(35, 5*time.Minute), Options{})
	if err != nil {
		t.Fatal(err)
	}
	last := res.Points[len(res.Points)-1]
	if d := last.Decision.Desired; d < 5 || d > 7 {
		t.Errorf("settled at %d replicas, want 5 (+ noise margin)", d)
	}
	if res.Summary.Rejected != 0 {
		t.Errorf("refused %d requests under steady load", res.Summary.Rejected)
	}
	// Poisson arrivals: the request count is near rate × duration.
	if n := res.Summary.Requests; n < 35*300*9/10 || n > 35*300*11/10 {
		t.Errorf("%d requests, want about %d", n, 35*300)
	}
}

func TestRunColdStartPokesAndScalesToZero(t *testing.T) {
	tr := constantTrace(1, 2*time.Minute)
	tr.Load = []Shape{{Kind: "rate", From: 10 * time.Second, To: 20 * time.Second, A: 2}}
	tr.Startup = 500 * time.Millisecond
	res, err := Run(tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	if s.Pokes != 1 || s.Rejected != 0 {
		t.Errorf("pokes %d rejected %d, want one cold start and nothing refused", s.Pokes, s.Rejected)
	}
	// The first request waits for the startup only, not for a tick.
	if s.MaxHoldWait > tr.Startup+DefaultResolution {
		t.Errorf("longest hold %v, want at most the %v startup", s.MaxHoldWait, tr.Startup)
	}
	last := res.Points[len(res.Points)-1].Decision
	if last.Desired != 0 || last.Reason != wire.ReasonScaleToZero {
		t.Errorf("ended at %d (%s), want 0 (scale-to-zero)", last.Desired, last.Reason)
	}
}

func TestRunHoldQueueBoundsAndTimeouts(t *testing.T) {
	// Far more load than max-replicas can carry: the hold queue fills,
	// the rest is refused, nothing waits past the hold timeout.
	tr := constantTrace(500, time.Minute)
	tr.MaxReplicas = 2
	tr.HoldQueue = 50
	tr.HoldTimeout = 2 * time.Second
	res, err := Run(tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Points {
		if p.Held > tr.HoldQueue {
			t.Fatalf("t=%v: %d held, bound %d", p.T, p.Held, tr.HoldQueue)
		}
		if p.Decision.Desired > tr.MaxReplicas {
			t.Fatalf("t=%v: desired %d above max", p.T, p.Decision.Desired)
		}
	}
	if s := res.Summary; s.RejectedFraction < 0.9 || s.MaxHoldWait > tr.HoldTimeout {
		t.Errorf("rejected %.2f (want most), longest hold %v (bound %v)", s.RejectedFraction, s.MaxHoldWait, tr.HoldTimeout)
	}
}

func TestRunAdmittedOnlyIsSlowerAfterAStep(t *testing.T) {
	tr := constantTrace(10, 3*time.Minute)
	tr.Load = append(tr.Load, Shape{Kind: "rate", From: 60 * time.Second, To: 3 * time.Minute, A: 90})
	tr.Marks = []Mark{{At: 60 * time.Second, Label: "step"}}
	flint, _ := Run(tr, Options{})
	admitted, _ := Run(tr, Options{AdmittedOnly: true})
	f, a := flint.Summary.Marks[0], admitted.Summary.Marks[0]
	if !f.Reached || (a.Reached && a.TimeToCapacity <= f.TimeToCapacity) {
		t.Errorf("time to capacity: with gateway demand %v, admitted-only %v (reached %v); want gateway demand faster", f.TimeToCapacity, a.TimeToCapacity, a.Reached)
	}
}
