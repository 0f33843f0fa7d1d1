// Package ui is Flint's web dashboard: a page at /ui that shows every agent,
// its replicas over time, in-flight and held requests, latency, cold starts
// and the autoscaler's recent decisions, updating every second.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary (no
// build step). It polls one JSON endpoint, /ui/api/state, which serves the
// Recorder's history: samples of the gateway's own counters taken every
// second and kept for ten minutes, so a page opened during an incident shows
// the minutes before it, not only what happens next. The package knows
// nothing about the gateway: the gateway implements Source.
package ui

import "time"

// Source returns every agent's state now. The gateway implements it from its
// routing state, its Prometheus series and the autoscaler's decisions.
type Source func() []AgentSample

// AgentSample is one agent at one instant. Counters are cumulative; the
// Recorder turns them into per-second rates and per-interval latency.
type AgentSample struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Protocol  string `json:"protocol"`
	URL       string `json:"url"`
	// Replicas is how many replicas are asked for, Ready how many serve.
	Replicas int `json:"replicas"`
	Ready    int `json:"ready"`
	// Desired is the autoscaler's latest decision, -1 when unknown (no
	// autoscaler in this process).
	Desired int  `json:"desired"`
	Panic   bool `json:"panic"`
	// Failure says why the agent cannot serve ("CrashLoopBackOff: …"), if it cannot.
	Failure string `json:"failure,omitempty"`
	// MinReplicas, MaxReplicas and Concurrency are from the spec (0 = unlimited concurrency).
	MinReplicas int `json:"minReplicas"`
	MaxReplicas int `json:"maxReplicas"`
	Concurrency int `json:"concurrency"`
	// InFlight counts requests the gateway has at replicas; Held those it
	// holds while the agent starts or every replica is full.
	InFlight int64 `json:"inFlight"`
	Held     int64 `json:"held"`

	RequestsTotal   uint64    `json:"requestsTotal"`
	ErrorsTotal     uint64    `json:"errorsTotal"` // 5xx answers
	RejectedTotal   uint64    `json:"rejectedTotal"`
	ColdStartsTotal uint64    `json:"coldStartsTotal"`
	Latency         Histogram `json:"-"`
	LastInvocation  time.Time `json:"lastInvocationAt,omitzero"`
	// Decisions are the autoscaler's recent scale changes, oldest first.
	Decisions []Decision `json:"decisions"`
}

// Key is "namespace/name".
func (a *AgentSample) Key() string { return a.Namespace + "/" + a.Name }

// Histogram is a cumulative latency histogram, as Prometheus keeps it.
type Histogram struct {
	Count   uint64
	Buckets []Bucket // ascending upper bounds, cumulative counts, no +Inf
}

// Bucket is one cumulative histogram bucket.
type Bucket struct {
	UpperBound float64
	Count      uint64
}

// Decision is one autoscaler decision that changed (or tried to change) the
// replica count.
type Decision struct {
	Time   time.Time `json:"time"`
	From   int32     `json:"from"`
	To     int32     `json:"to"`
	Reason string    `json:"reason"`
	Panic  bool      `json:"panic"`
	Demand float64   `json:"demand"`
}

// Phase summarises an agent's state in a word the page shows as a badge.
func Phase(a *AgentSample) string {
	switch {
	case a.Failure != "":
		return "failing"
	case a.Panic:
		return "panic"
	case a.Ready == 0 && a.Replicas == 0 && a.Held == 0:
		return "scaled to zero"
	case a.Ready == 0:
		return "starting"
	case a.Ready < a.Replicas:
		return "scaling up"
	case a.Ready > a.Replicas:
		return "scaling down"
	default:
		return "ready"
	}
}
