package gateway

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/ui"
)

// maxDashboardDecisions bounds the scale changes the dashboard lists per agent.
const maxDashboardDecisions = 10

// mountDashboard serves the web dashboard at /ui on the admin mux. The page
// itself holds no data; its state, like the agent listing, needs
// credentials when the gateway requires them (the page asks for a key).
func (g *Gateway) mountDashboard(mux *http.ServeMux) {
	h := g.obs.dashboard.Handler()
	mux.Handle("/ui", h)
	mux.Handle(ui.Path, h)
	mux.HandleFunc("GET "+ui.StatePath, func(w http.ResponseWriter, r *http.Request) {
		if g.authenticated(w, r) {
			h.ServeHTTP(w, r)
		}
	})
}

// dashboardSamples is the dashboard's ui.Source: every agent's state from
// the routing state, the gateway's own series and the autoscaler.
func (g *Gateway) dashboardSamples() []ui.AgentSample {
	agents := g.platform.Agents()
	out := make([]ui.AgentSample, 0, len(agents))
	for _, a := range agents {
		out = append(out, g.dashboardSample(a))
	}
	return out
}

func (g *Gateway) dashboardSample(a *v1alpha1.Agent) ui.AgentSample {
	key := platform.KeyOf(a)
	sum := g.summarize(a)
	s := ui.AgentSample{
		Namespace: a.Namespace, Name: a.Name, Protocol: sum.Protocol, URL: sum.URL,
		Replicas: int(sum.Replicas), Ready: sum.ReadyReplicas, Desired: -1,
		Concurrency: int(a.Spec.Concurrency), InFlight: sum.InFlight, Held: sum.Held, RequestsTotal: sum.RequestsTotal,
		Decisions: []ui.Decision{},
	}
	if lo := a.Spec.Scaling.MinReplicas; lo != nil {
		s.MinReplicas = int(*lo)
	}
	if hi := a.Spec.Scaling.MaxReplicas; hi != nil {
		s.MaxReplicas = int(*hi)
	}
	if f := sum.Failure; f != nil {
		s.Failure = f.Reason + ": " + f.Message
	}
	if sum.LastInvocationAt != nil {
		s.LastInvocation = *sum.LastInvocationAt
	}
	decs := g.decisionsOf(key)
	if len(decs) > 0 {
		last := decs[len(decs)-1]
		s.Desired, s.Panic = int(last.Desired), last.Panic
	}
	for _, d := range decs {
		if d.Desired != d.Current {
			s.Decisions = append(s.Decisions, ui.Decision{Time: d.Time, From: d.Current, To: d.Desired,
				Reason: string(d.Reason), Panic: d.Panic, Demand: d.Demand})
		}
	}
	if n := len(s.Decisions); n > maxDashboardDecisions {
		s.Decisions = s.Decisions[n-maxDashboardDecisions:]
	}
	if st := g.existingState(key); st != nil {
		s.RejectedTotal = st.rejected.Load()
		s.ColdStartsTotal = uint64(counterValue(st.metrics.coldStarts))
		s.ErrorsTotal = serverErrors(st.metrics)
		s.Latency = histogramOf(st.metrics.duration)
	}
	return s
}

// serverErrors sums the agent's 5xx answers from its per-code counters.
func serverErrors(am *agentMetrics) uint64 {
	var n float64
	am.codes.Range(func(k, v any) bool {
		if code := k.(int); code >= 500 && code < 600 {
			n += counterValue(v.(prometheus.Counter))
		}
		return true
	})
	return uint64(n)
}

// histogramOf reads a latency histogram's cumulative buckets.
func histogramOf(o prometheus.Observer) ui.Histogram {
	m, ok := o.(prometheus.Metric)
	if !ok {
		return ui.Histogram{}
	}
	var pb dto.Metric
	if err := m.Write(&pb); err != nil || pb.Histogram == nil {
		return ui.Histogram{}
	}
	h := ui.Histogram{Count: pb.Histogram.GetSampleCount()}
	for _, b := range pb.Histogram.GetBucket() {
		h.Buckets = append(h.Buckets, ui.Bucket{UpperBound: b.GetUpperBound(), Count: b.GetCumulativeCount()})
	}
	return h
}
