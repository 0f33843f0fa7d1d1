package wire

import "time"

// What the gateway and the autoscaler tell each other about an agent: the
// gateway's Demand (served to the manager on its control port in Kubernetes,
// read in process by `flint up`), and the autoscaler's Decisions, which the
// gateway shows in `flint describe` and its dashboard.

// Demand is what the gateway knows about an agent that replicas' sidecars
// cannot: requests it is holding (cold start, or every replica full),
// requests it refused, and when the last request arrived. Its JSON names
// are those of the gateway's control port (demand.Record), which gateways
// and managers of different versions share during an upgrade.
type Demand struct {
	// Held is the number of requests the gateway is holding now, waiting for
	// a replica to turn ready or a slot to free (cold holds + capacity holds).
	Held int64 `json:"held"`
	// InFlight is the number of requests the gateway has sent to replicas
	// and not seen finish. The Decider reads the sidecars' own counts; this
	// is for people and for checking one against the other.
	InFlight int64 `json:"inFlight"`
	// RejectedTotal counts requests the gateway refused (hold queue full or
	// hold timed out) since it started.
	RejectedTotal uint64 `json:"rejectedTotal"`
	// RequestsTotal counts every request the gateway received for the agent
	// since it started, including held and refused ones.
	RequestsTotal uint64 `json:"requestsTotal"`
	// LastRequest is when the latest request arrived (zero if none).
	LastRequest time.Time `json:"lastRequest,omitzero"`
}

// Decision is the autoscaler's answer for one agent at one tick (or one
// poke). The gateway shows the latest ones to people (describe, dashboard).
type Decision struct {
	Time time.Time
	// Desired is the number of replicas to ask for.
	Desired int32
	// Current and Ready are the replicas asked for and ready when deciding.
	Current int32
	Ready   int32
	// Reason names the rule that settled Desired.
	Reason Reason
	// Panic reports panic mode.
	Panic bool
	// Demand is this tick's observed concurrency: in-flight and queued on
	// replicas, or, while the gateway holds or refuses requests, the
	// offered load (arrival rate × service time), each request counted
	// once.
	Demand float64
	// StableDemand and PanicDemand are Demand averaged over each window.
	StableDemand float64
	PanicDemand  float64
	// Unknown counts ready replicas whose stats could not be read.
	Unknown int32
}

// Reason says which rule settled a Decision. Reasons are stable strings: they
// appear in logs, in Decisions (for `flint describe`) and in the simulator's
// CSV.
type Reason string

const (
	// ReasonStable: desired follows the stable-window average.
	ReasonStable Reason = "stable"
	// ReasonPanic: panic-window demand is at least PanicThreshold × ready
	// capacity (or was within the last stable window); desired never
	// drops, and rises to the panic window only while it is over the
	// threshold, the gateway holds or refuses requests, or by 20% or more.
	ReasonPanic Reason = "panic"
	// ReasonScaleToZero: no request for ScaleToZeroAfter, so the agent
	// heads to zero (halving per tick at most).
	ReasonScaleToZero Reason = "scale-to-zero"
	// ReasonClampedMin: desired was raised to minReplicas.
	ReasonClampedMin Reason = "clamped-min"
	// ReasonClampedMax: desired was lowered to maxReplicas.
	ReasonClampedMax Reason = "clamped-max"
	// ReasonHeldByStableWindow: a scale-down was refused or cut short
	// (hysteresis): the last scale-up is less than a stable window old, or
	// within the last stable window a panic window needed more replicas.
	ReasonHeldByStableWindow Reason = "held-stable-window"
	// ReasonHeldRecentTraffic: the windows asked for zero but requests
	// arrived within ScaleToZeroAfter, so one replica stays.
	ReasonHeldRecentTraffic Reason = "held-recent-traffic"
	// ReasonRateLimited: the max scale-up or scale-down rate cut the step.
	ReasonRateLimited Reason = "rate-limited"
	// ReasonPoke: a request is held for an agent at zero; one replica is
	// asked for at once, without waiting for a tick.
	ReasonPoke Reason = "poke"
	// ReasonNoData: no replica's stats are known and the gateway shows no
	// demand, so the replica count is kept as it is.
	ReasonNoData Reason = "no-data"
)
