package wire

// Stats is one snapshot of a replica's load: the contract between the
// sidecar, which serves it on its admin port at PathStats, and the
// autoscaler, which scrapes it.
//
// Averages are left to the reader: the sidecar reports cumulative integrals
// (InFlightSeconds, QueuedSeconds) and its uptime, and a scraper divides the
// difference between two snapshots by the time between them. That is exact
// over any interval, lets several scrapers read the same sidecar without
// resetting each other's windows, and a missed scrape loses no information.
type Stats struct {
	// UptimeSeconds is the sidecar's monotonic time since start.
	UptimeSeconds float64 `json:"uptimeSeconds"`
	// InFlight is the number of requests being served now.
	InFlight int64 `json:"inFlight"`
	// Queued is the number of requests waiting for a slot now.
	Queued int64 `json:"queued"`
	// InFlightSeconds is the integral of InFlight over time since start.
	InFlightSeconds float64 `json:"inFlightSeconds"`
	// QueuedSeconds is the integral of Queued over time since start.
	QueuedSeconds float64 `json:"queuedSeconds"`
	// RequestsTotal counts requests admitted to the agent.
	RequestsTotal uint64 `json:"requestsTotal"`
	// RejectedTotal counts requests refused with 503 because every slot and
	// the queue were full.
	RejectedTotal uint64 `json:"rejectedTotal"`
	// Concurrency is the replica's cap (0 = unlimited).
	Concurrency int64 `json:"concurrency"`
	// Ready reports whether the replica accepts new requests.
	Ready bool `json:"ready"`
	// Draining reports that the replica is shutting down.
	Draining bool `json:"draining"`
}

// Average returns the time-weighted average in-flight and queued requests
// between an earlier snapshot prev and s. ok is false when the snapshots do
// not span any time or come from different sidecar lifetimes (a restart).
func Average(prev, s Stats) (inFlight, queued float64, ok bool) {
	dt := s.UptimeSeconds - prev.UptimeSeconds
	if dt <= 0 {
		return 0, 0, false
	}
	return (s.InFlightSeconds - prev.InFlightSeconds) / dt, (s.QueuedSeconds - prev.QueuedSeconds) / dt, true
}
