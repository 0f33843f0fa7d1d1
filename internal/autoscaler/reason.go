package autoscaler

// Reason says which rule settled a Decision. Reasons are stable strings: they
// appear in logs, in Decisions (for `flint describe`) and in the simulator's
// CSV.
type Reason string

const (
	// ReasonStable: desired follows the stable-window average.
	ReasonStable Reason = "stable"
	// ReasonPanic: panic-window demand is at least PanicThreshold × ready
	// capacity (or was within the last stable window); desired follows the
	// higher of both windows and never drops.
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
