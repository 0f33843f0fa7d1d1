package gateway

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/wire"
)

// DescribePath is where one agent's AgentDetail is served:
// GET /api/v1/agents/{namespace}/{name}. (Under /v1/agents/ that path would
// invoke the agent.)
const DescribePath = "/api/v1/agents/"

// AgentDetail is one agent as `flint describe` shows it: its spec, what the
// gateway sees of it now, its ready replicas and the autoscaler's recent
// decisions with their reasons.
type AgentDetail struct {
	AgentSummary
	Spec            v1alpha1.AgentSpec `json:"spec"`
	Endpoints       []EndpointDetail   `json:"endpoints"`
	RejectedTotal   uint64             `json:"rejectedTotal"`
	ColdStartsTotal uint64             `json:"coldStartsTotal"`
	Decisions       []DecisionDetail   `json:"decisions"`
	// Events are Kubernetes Events about the Agent, oldest first; only the
	// CLI's cluster reader fills them (a gateway has none).
	Events []EventDetail `json:"events,omitempty"`
}

// EventDetail is one Kubernetes Event about an agent.
type EventDetail struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Count   int32     `json:"count"`
}

// EndpointDetail is one ready replica.
type EndpointDetail struct {
	Replica   string `json:"replica"`
	Addr      string `json:"addr"`
	AdminAddr string `json:"adminAddr"`
	// InFlight is this gateway's requests at the replica now.
	InFlight int64 `json:"inFlight"`
}

// DecisionDetail is one autoscaler decision (see wire.Decision).
type DecisionDetail struct {
	Time         time.Time `json:"time"`
	Current      int32     `json:"current"`
	Desired      int32     `json:"desired"`
	Ready        int32     `json:"ready"`
	Reason       string    `json:"reason"`
	Panic        bool      `json:"panic"`
	Demand       float64   `json:"demand"`
	StableDemand float64   `json:"stableDemand"`
	PanicDemand  float64   `json:"panicDemand"`
}

// Failure is why an agent cannot serve (platform.FailureReporter), e.g.
// CrashLoopBackOff with the agent's last output line.
type Failure struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// summarize builds an agent's line of the listing.
func (g *Gateway) summarize(a *v1alpha1.Agent) AgentSummary {
	key := platform.KeyOf(a)
	eps, _ := g.platform.ReadyEndpoints(key)
	s := AgentSummary{
		Namespace: a.Namespace, Name: a.Name, Protocol: string(a.Spec.Protocol),
		URL:      g.cfg.publicURL() + RoutePrefix + key.Namespace + "/" + key.Name + "/",
		Replicas: g.platform.Replicas(key), ReadyReplicas: len(eps),
	}
	if fr, ok := g.platform.(platform.FailureReporter); ok {
		if reason, msg, failing := fr.Failure(key); failing {
			s.Failure = &Failure{Reason: reason, Message: msg}
		}
	}
	if decs := g.decisionsOf(key); len(decs) > 0 {
		desired := decs[len(decs)-1].Desired
		s.DesiredReplicas = &desired
	}
	if st := g.existingState(key); st != nil {
		s.Held, s.RequestsTotal, s.InFlight = st.held.Load(), st.requests.Load(), st.inFlight()
		if ns := st.lastRequest.Load(); ns > 0 {
			t := time.Unix(0, ns).UTC()
			s.LastInvocationAt = &t
		}
	}
	return s
}

// existingState is the agent's routing state, nil before its first request.
func (g *Gateway) existingState(key platform.AgentKey) *agentState {
	if v, ok := g.agents.Load(key); ok {
		return v.(*agentState)
	}
	return nil
}

// describe builds an agent's detail; false when there is no such agent.
func (g *Gateway) describe(key platform.AgentKey) (AgentDetail, bool) {
	a, ok := g.platform.Agent(key)
	if !ok {
		return AgentDetail{}, false
	}
	d := AgentDetail{AgentSummary: g.summarize(a), Spec: a.Spec, Endpoints: []EndpointDetail{}, Decisions: []DecisionDetail{}}
	eps, _ := g.platform.ReadyEndpoints(key)
	inFlight := map[string]int64{}
	st := g.existingState(key)
	if st != nil {
		if set := st.set.Load(); set != nil {
			for _, b := range set.backends {
				inFlight[b.Addr] = b.inFlight.Load()
			}
		}
		d.RejectedTotal = st.rejected.Load()
		d.ColdStartsTotal = uint64(counterValue(st.metrics.coldStarts))
	}
	for _, ep := range eps {
		d.Endpoints = append(d.Endpoints, EndpointDetail{Replica: ep.Replica, Addr: ep.Addr, AdminAddr: ep.AdminAddr, InFlight: inFlight[ep.Addr]})
	}
	for _, dec := range g.decisionsOf(key) {
		d.Decisions = append(d.Decisions, decisionDetail(dec))
	}
	return d, true
}

func decisionDetail(d wire.Decision) DecisionDetail {
	return DecisionDetail{Time: d.Time, Current: d.Current, Desired: d.Desired, Ready: d.Ready, Reason: string(d.Reason),
		Panic: d.Panic, Demand: d.Demand, StableDemand: d.StableDemand, PanicDemand: d.PanicDemand}
}

func (g *Gateway) describeAgent(w http.ResponseWriter, r *http.Request) {
	if !g.authenticated(w, r) {
		return
	}
	key := platform.AgentKey{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}
	d, ok := g.describe(key)
	if !ok {
		errUnknownAgent(key).write(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(d)
}

// counterValue reads a counter's current value (0 if it cannot be read).
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil || m.Counter == nil {
		return 0
	}
	return m.Counter.GetValue()
}
