package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/flint-dev/flint/internal/wire"
)

// Summary is what a replay comes down to.
type Summary struct {
	Requests uint64
	Rejected uint64
	// RejectedFraction is Rejected / Requests: refused because the hold
	// queue was full or a hold timed out.
	RejectedFraction float64
	// ScaleUps and ScaleDowns count decisions that changed the replica
	// count (pokes included).
	ScaleUps   int
	ScaleDowns int
	Pokes      int
	// PeakReplicas and ReplicaSeconds (replicas asked for × time) are the
	// cost side.
	PeakReplicas   int32
	ReplicaSeconds float64
	// MeanHoldWait and MaxHoldWait are over requests the gateway held and
	// then forwarded.
	MeanHoldWait time.Duration
	MaxHoldWait  time.Duration
	// PanicSeconds is time spent in panic mode.
	PanicSeconds float64
	Marks        []MarkResult
}

// MarkResult measures the catch-up after a mark: how long until the Decider
// asked for enough replicas to carry the offered load (desired ×
// concurrency ≥ rate × service time) and until that many were ready.
type MarkResult struct {
	Mark
	TimeToDesired  time.Duration
	TimeToCapacity time.Duration
	// Reached is false when capacity never caught up before the trace
	// ended; the times are then meaningless.
	Reached bool
}

type markState struct {
	Mark
	desiredAt, capacityAt time.Duration
	desiredOK, capacityOK bool
}

// checkMarks runs every step: capacity is measured at the resolution.
func (s *simulation) checkMarks() {
	for i := range s.marks {
		m := &s.marks[i]
		if m.capacityOK || s.now < m.At {
			continue
		}
		capacity := float64(len(s.fleet.readyReplicas(s.now))) * float64(s.tr.Concurrency)
		if capacity >= s.offered() {
			m.capacityAt, m.capacityOK = s.now-m.At, true
		}
	}
}

// checkDesired runs every tick, after the decision.
func (s *simulation) checkDesired(dec wire.Decision) {
	for i := range s.marks {
		m := &s.marks[i]
		if m.desiredOK || s.now < m.At {
			continue
		}
		if float64(dec.Desired)*float64(s.tr.Concurrency) >= s.offered() {
			m.desiredAt, m.desiredOK = s.now-m.At, true
		}
	}
}

func (s *simulation) offered() float64 { return s.tr.Rate(s.now) * s.tr.ServiceTime.Seconds() }

func (s *simulation) summarize() Summary {
	sum := Summary{
		Requests:       s.gw.requests,
		Rejected:       s.gw.rejected,
		PeakReplicas:   s.peak,
		ReplicaSeconds: s.replicaS,
		MaxHoldWait:    s.gw.waitMax,
	}
	if sum.Requests > 0 {
		sum.RejectedFraction = float64(sum.Rejected) / float64(sum.Requests)
	}
	if s.gw.waited > 0 {
		sum.MeanHoldWait = s.gw.waitSum / time.Duration(s.gw.waited)
	}
	for _, d := range s.decisions {
		switch {
		case d.Desired > d.Current:
			sum.ScaleUps++
		case d.Desired < d.Current:
			sum.ScaleDowns++
		}
		if d.Reason == wire.ReasonPoke {
			sum.Pokes++
		}
	}
	for _, p := range s.points {
		if p.Decision.Panic {
			sum.PanicSeconds += s.tr.Tick.Seconds()
		}
	}
	for _, m := range s.marks {
		sum.Marks = append(sum.Marks, MarkResult{Mark: m.Mark, TimeToDesired: m.desiredAt, TimeToCapacity: m.capacityAt, Reached: m.capacityOK})
	}
	return sum
}

// String formats a summary on a few lines.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "requests %d, rejected %d (%.2f%%), scale-ups %d, scale-downs %d, pokes %d\n",
		s.Requests, s.Rejected, 100*s.RejectedFraction, s.ScaleUps, s.ScaleDowns, s.Pokes)
	fmt.Fprintf(&b, "peak replicas %d, replica-seconds %.0f, panic %.0fs, hold wait mean %v max %v\n",
		s.PeakReplicas, s.ReplicaSeconds, s.PanicSeconds, s.MeanHoldWait.Round(time.Millisecond), s.MaxHoldWait.Round(time.Millisecond))
	for _, m := range s.Marks {
		if !m.Reached {
			fmt.Fprintf(&b, "mark %s at %v: capacity never caught up\n", m.Label, m.At)
			continue
		}
		fmt.Fprintf(&b, "mark %s at %v: desired enough after %v, capacity after %v\n", m.Label, m.At, m.TimeToDesired, m.TimeToCapacity)
	}
	return b.String()
}
