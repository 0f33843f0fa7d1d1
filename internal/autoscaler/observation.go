package autoscaler

import (
	"time"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/wire"
)

// DemandSource reports the gateway's Demand per agent. The gateway implements
// it; the Loop works without one (sidecar stats only).
type DemandSource interface {
	Demand(key platform.AgentKey) wire.Demand
}

// ReplicaSample is one ready replica's load since the previous scrape.
type ReplicaSample struct {
	// InFlight and Queued are time-weighted averages since the previous
	// scrape (or instantaneous values on a replica's first scrape).
	InFlight float64
	Queued   float64
	// Requests is how many requests the replica admitted during Span.
	Requests uint64
	// Completed is how many requests finished during Span: admitted minus
	// the growth of the in-flight count.
	Completed uint64
	// Span is the time the averages cover: zero on a first scrape, whose
	// counts are instantaneous and whose Requests are unknown.
	Span time.Duration
	// Known is false when the scrape failed. An unknown replica is never
	// read as idle: the Decider extrapolates from the replicas that
	// answered, or carries the last known total.
	Known bool
}

// SampleFromStats turns two snapshots of a sidecar's Stats into a sample. prev
// is nil on the first scrape of a replica; then, or when the sidecar
// restarted in between, the instantaneous counts stand in for the averages.
func SampleFromStats(prev *wire.Stats, cur wire.Stats) ReplicaSample {
	s := ReplicaSample{InFlight: float64(cur.InFlight), Queued: float64(cur.Queued), Known: true}
	if prev == nil {
		return s
	}
	if inFlight, queued, ok := wire.Average(*prev, cur); ok && inFlight >= 0 && queued >= 0 && cur.RequestsTotal >= prev.RequestsTotal {
		s.InFlight, s.Queued = inFlight, queued
		s.Requests = cur.RequestsTotal - prev.RequestsTotal
		// Whatever was admitted and is no longer in flight has finished.
		s.Completed = uint64(max(0, int64(s.Requests)-(cur.InFlight-prev.InFlight)))
		s.Span = time.Duration((cur.UptimeSeconds - prev.UptimeSeconds) * float64(time.Second))
	}
	return s
}

// Observation is everything the Decider learns in one tick.
type Observation struct {
	// Replicas has one sample per ready replica; its length is the ready
	// count.
	Replicas []ReplicaSample
	// Gateway is the gateway's view (zero when there is no gateway).
	Gateway wire.Demand
	// Current is the number of replicas asked for, ready or not.
	Current int32
}

// assumedServiceTime stands in for the measured service time while no
// replica has served anything to measure it from (a cold start).
const assumedServiceTime = time.Second

// counterDelta is cur-prev for a monotonic counter, treating a decrease as a
// restart of the counter from zero.
func counterDelta(cur, prev uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// tickLoad is one tick's raw numbers, before any averaging.
type tickLoad struct {
	// inFlight and queued total the ready replicas, with unknown replicas
	// extrapolated from those that answered.
	inFlight, queued float64
	// service is the mean time a request holds a slot over the stable
	// window (Decider.serviceTime); zero before any request completed.
	service time.Duration
	// busy and completed are the in-flight average and the completion rate
	// of the replicas with averaged samples, from which service is measured.
	busy, completed float64
	// arrived and refused count gateway requests since the previous tick;
	// held is the gateway's hold queue now.
	arrived, refused uint64
	held             int64
	// backlog is set while the gateway holds or refuses requests, and for
	// a panic window after: the replicas' counts then include the backlog
	// draining.
	backlog bool
	dt      time.Duration
}

// replicaLoad totals the ready replicas' samples. Replicas whose stats are
// unknown are assumed to carry the mean load of those that answered. known
// is false when no replica answered.
func replicaLoad(samples []ReplicaSample) (l tickLoad, unknown int, known bool) {
	if len(samples) == 0 {
		return l, 0, true
	}
	answered := 0
	var measuredInFlight, completedRate float64
	for _, s := range samples {
		if !s.Known {
			continue
		}
		answered++
		l.inFlight += s.InFlight
		l.queued += s.Queued
		if s.Span > 0 {
			measuredInFlight += s.InFlight
			completedRate += float64(s.Completed) / s.Span.Seconds()
		}
	}
	if answered == 0 {
		return tickLoad{}, len(samples), false
	}
	scale := float64(len(samples)) / float64(answered)
	l.inFlight, l.queued = l.inFlight*scale, l.queued*scale
	l.busy, l.completed = measuredInFlight, completedRate
	return l, len(samples) - answered, true
}

// concurrency is the demand the tick shows, in concurrent requests.
//
// While the gateway holds and refuses nothing, every request that arrived
// was admitted, and demand is simply what the replicas hold (in flight plus
// queued). Once it holds or refuses requests, the replicas are full and
// their count says nothing about how much more was wanted, so demand becomes
// the offered load: arrival rate × service time (Little's law). Each request
// is counted once, in the rate, when it arrives. Held requests are not added
// again, on this tick or any later one while they wait, and for a panic
// window after the last hold the replicas' own count is not used either,
// because the backlog draining onto new replicas sits in it a second time.
// Counting the backlog on top of the rate made a 10x step overshoot its
// need by half (23 replicas for 15).
func (l tickLoad) concurrency() float64 {
	replicas := l.inFlight + l.queued
	if !l.backlog {
		return replicas
	}
	dt := l.dt.Seconds()
	if dt <= 0 {
		// The first observation has no rate: count every request in
		// the system once, wherever it is.
		return replicas + float64(max(l.held, 0))
	}
	service := assumedServiceTime.Seconds()
	if l.service > 0 {
		service = l.service.Seconds()
	}
	return float64(l.arrived) / dt * service
}
