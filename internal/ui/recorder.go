package ui

import (
	"context"
	"math"
	"sort"
	"sync"
	"time"
)

// Defaults of the Recorder: a sample a second, ten minutes kept.
const (
	DefaultInterval = time.Second
	DefaultKeep     = 600
)

// Point is one agent's state over one sampling interval, as plotted.
type Point struct {
	Seq      uint64 `json:"seq"`
	Time     int64  `json:"t"` // unix milliseconds
	Replicas int    `json:"replicas"`
	Ready    int    `json:"ready"`
	Desired  int    `json:"desired"`
	InFlight int64  `json:"inFlight"`
	Held     int64  `json:"held"`
	// Rates are per second over the interval.
	RequestRate float64 `json:"rps"`
	ErrorRate   float64 `json:"errorRate"`
	RejectRate  float64 `json:"rejectRate"`
	ColdStarts  uint64  `json:"coldStarts"`
	// P50 and P99 are request latencies over the interval in seconds, nil
	// when no request finished in it.
	P50 *float64 `json:"p50"`
	P99 *float64 `json:"p99"`
}

// Recorder samples a Source at a fixed interval and keeps each agent's
// recent Points. Sampling also happens on demand when a page asks for state
// and the last sample is older than the interval, so the dashboard works
// even where nothing calls Run.
type Recorder struct {
	src      Source
	interval time.Duration
	keep     int
	now      func() time.Time

	mu     sync.Mutex
	seq    uint64
	last   time.Time
	agents map[string]*agentHistory
	// times holds the time of each of the last keep samples, at
	// times[seq%keep]: every agent's point of a sample has that time.
	times []int64
}

// agentHistory is one agent's points of the last keep samples, one per
// sample from its first, as runs of points that differ only in Seq and
// Time. An agent nobody calls repeats one point, so it holds one run, not
// keep points: ten minutes of 2,000 idle agents' points were 66 MiB of a
// gateway's heap (docs/scale.md).
type agentHistory struct {
	current AgentSample
	prev    AgentSample
	runs    []pointRun // oldest first
}

// pointRun is n points equal to p but for Seq and Time: those of samples
// p.Seq to p.Seq+n-1.
type pointRun struct {
	p Point
	n uint64
}

// NewRecorder returns a Recorder of src. Zero interval or keep take the defaults.
func NewRecorder(src Source, interval time.Duration, keep int) *Recorder {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if keep <= 0 {
		keep = DefaultKeep
	}
	return &Recorder{src: src, interval: interval, keep: keep, now: time.Now, agents: map[string]*agentHistory{},
		times: make([]int64, keep)}
}

// Run samples every interval until ctx ends.
func (r *Recorder) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	r.sampleIfStale()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.sampleIfStale()
		}
	}
}

// Sample takes one sample of every agent now.
func (r *Recorder) Sample() { r.sample(0) }

// sampleIfStale samples unless the newest sample is younger than most of an
// interval: a page polling alone drives the history, and a poll right after
// a tick does not add a near-duplicate point (whose rates would be noise).
func (r *Recorder) sampleIfStale() { r.sample(r.interval * 9 / 10) }

// sample records a sample unless the previous one is younger than minAge.
// The source is read outside the lock (it may be slow); the age is checked
// again under it, so concurrent samplers never record out of order.
func (r *Recorder) sample(minAge time.Duration) {
	r.mu.Lock()
	fresh := !r.last.IsZero() && r.now().Sub(r.last) < minAge
	r.mu.Unlock()
	if fresh {
		return
	}
	samples := r.src()
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() && (now.Sub(r.last) < minAge || !now.After(r.last)) {
		return
	}
	r.record(now, samples)
}

func (r *Recorder) record(now time.Time, samples []AgentSample) {
	elapsed := now.Sub(r.last).Seconds()
	first := r.last.IsZero()
	r.seq++
	r.last = now
	r.times[r.seq%uint64(r.keep)] = now.UnixMilli()
	seen := make(map[string]bool, len(samples))
	for _, s := range samples {
		key := s.Key()
		seen[key] = true
		h, ok := r.agents[key]
		if !ok {
			h = &agentHistory{prev: s}
			r.agents[key] = h
		} else {
			h.prev = h.current
		}
		h.current = s
		p := Point{Seq: r.seq, Time: now.UnixMilli(), Replicas: s.Replicas, Ready: s.Ready, Desired: s.Desired,
			InFlight: s.InFlight, Held: s.Held}
		if ok && !first && elapsed > 0 {
			p.RequestRate = rate(h.prev.RequestsTotal, s.RequestsTotal, elapsed)
			p.ErrorRate = rate(h.prev.ErrorsTotal, s.ErrorsTotal, elapsed)
			p.RejectRate = rate(h.prev.RejectedTotal, s.RejectedTotal, elapsed)
			p.ColdStarts = delta(h.prev.ColdStartsTotal, s.ColdStartsTotal)
			p.P50 = quantile(0.5, h.prev.Latency, s.Latency)
			p.P99 = quantile(0.99, h.prev.Latency, s.Latency)
		}
		h.add(p, r.oldest())
	}
	for key := range r.agents {
		if !seen[key] {
			delete(r.agents, key)
		}
	}
}

// oldest is the first sample still kept.
func (r *Recorder) oldest() uint64 {
	return uint64(max(int64(r.seq)-int64(r.keep)+1, 1))
}

// timeOf is the time of a kept sample.
func (r *Recorder) timeOf(seq uint64) int64 { return r.times[seq%uint64(r.keep)] }

// add appends p, the point of the newest sample, and drops the points of
// samples before oldest.
func (h *agentHistory) add(p Point, oldest uint64) {
	if n := len(h.runs); n > 0 {
		last := &h.runs[n-1]
		if last.p.Seq+last.n == p.Seq && samePoint(last.p, p) {
			last.n++
		} else {
			h.runs = append(h.runs, pointRun{p: p, n: 1})
		}
	} else {
		h.runs = append(h.runs, pointRun{p: p, n: 1})
	}
	drop := 0
	for drop < len(h.runs) && h.runs[drop].p.Seq+h.runs[drop].n <= oldest {
		drop++
	}
	if drop > 0 {
		h.runs = append(h.runs[:0], h.runs[drop:]...)
	}
	if first := &h.runs[0]; first.p.Seq < oldest {
		first.n -= oldest - first.p.Seq
		first.p.Seq = oldest // its Time is set when read (timeOf)
	}
}

// samePoint reports whether a and b differ at most in Seq and Time.
func samePoint(a, b Point) bool {
	a.Seq, a.Time, b.Seq, b.Time = 0, 0, 0, 0
	p50, p99 := sameValue(a.P50, b.P50), sameValue(a.P99, b.P99)
	a.P50, a.P99, b.P50, b.P99 = nil, nil, nil, nil
	return p50 && p99 && a == b
}

func sameValue(a, b *float64) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// since returns the points newer than seq, oldest first.
func (r *Recorder) since(h *agentHistory, seq uint64) []Point {
	var out []Point
	for _, run := range h.runs {
		for i := range run.n {
			if s := run.p.Seq + i; s > seq {
				p := run.p
				p.Seq, p.Time = s, r.timeOf(s)
				out = append(out, p)
			}
		}
	}
	return out
}

// State is what /ui/api/state returns.
type State struct {
	Now            time.Time    `json:"now"`
	Seq            uint64       `json:"seq"`
	IntervalMillis int64        `json:"intervalMillis"`
	Agents         []AgentState `json:"agents"`
}

// AgentState is one agent's current sample, its phase, and its points newer
// than what the page already has.
type AgentState struct {
	AgentSample
	Phase  string  `json:"phase"`
	Points []Point `json:"points"`
}

// State returns every agent with the points newer than since, agents sorted
// by namespace and name.
func (r *Recorder) State(since uint64) State {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := State{Now: r.last, Seq: r.seq, IntervalMillis: r.interval.Milliseconds(), Agents: make([]AgentState, 0, len(r.agents))}
	if since > r.seq {
		since = 0 // the gateway restarted: send everything
	}
	for _, h := range r.agents {
		a := AgentState{AgentSample: h.current, Phase: Phase(&h.current), Points: r.since(h, since)}
		if a.Points == nil {
			a.Points = []Point{}
		}
		if a.Decisions == nil {
			a.Decisions = []Decision{}
		}
		st.Agents = append(st.Agents, a)
	}
	sort.Slice(st.Agents, func(i, j int) bool { return st.Agents[i].Key() < st.Agents[j].Key() })
	return st
}

func delta(prev, cur uint64) uint64 {
	if cur < prev {
		return cur // counter reset
	}
	return cur - prev
}

func rate(prev, cur uint64, seconds float64) float64 {
	return float64(delta(prev, cur)) / seconds
}

// quantile estimates the q-quantile of the observations made between two
// cumulative histograms, interpolating linearly inside the bucket the way
// Prometheus' histogram_quantile does. Observations above the last bound
// report the last bound. It returns nil when nothing was observed.
func quantile(q float64, prev, cur Histogram) *float64 {
	total := delta(prev.Count, cur.Count)
	if total == 0 || len(cur.Buckets) == 0 {
		return nil
	}
	rank := q * float64(total)
	lower, below := 0.0, uint64(0)
	for i, b := range cur.Buckets {
		n := b.Count
		if i < len(prev.Buckets) && prev.Buckets[i].UpperBound == b.UpperBound {
			n = delta(prev.Buckets[i].Count, b.Count)
		}
		if float64(n) >= rank {
			v := lower
			if inBucket := n - below; inBucket > 0 {
				v += (b.UpperBound - lower) * (rank - float64(below)) / float64(inBucket)
			}
			return &v
		}
		lower, below = b.UpperBound, n
	}
	v := cur.Buckets[len(cur.Buckets)-1].UpperBound
	if math.IsInf(v, 1) {
		v = lower
	}
	return &v
}
