package gateway

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flint-dev/flint/internal/platform"
)

// AgentSummary is one agent in the gateway's listing, for the CLI and UI.
type AgentSummary struct {
	Namespace        string     `json:"namespace"`
	Name             string     `json:"name"`
	Protocol         string     `json:"protocol"`
	URL              string     `json:"url"`
	Replicas         int32      `json:"replicas"`
	ReadyReplicas    int        `json:"readyReplicas"`
	Held             int64      `json:"held"`
	RequestsTotal    uint64     `json:"requestsTotal"`
	LastInvocationAt *time.Time `json:"lastInvocationAt,omitempty"`
}

func (g *Gateway) adminMux(reg prometheus.Registerer) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	if g, ok := reg.(prometheus.Gatherer); ok {
		mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /v1/agents", g.listAgents)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		(&gatewayError{status: http.StatusNotFound, reason: "NotFound",
			message: "no such path: invoke agents at " + RoutePrefix + "{namespace}/{name}/"}).write(w)
	})
	return mux
}

func (g *Gateway) listAgents(w http.ResponseWriter, r *http.Request) {
	if !g.authenticated(w, r) {
		return
	}
	agents := g.platform.Agents()
	out := make([]AgentSummary, 0, len(agents))
	for _, a := range agents {
		key := platform.KeyOf(a)
		eps, _ := g.platform.ReadyEndpoints(key)
		s := AgentSummary{
			Namespace: a.Namespace, Name: a.Name, Protocol: string(a.Spec.Protocol),
			URL:      g.cfg.publicURL() + RoutePrefix + key.Namespace + "/" + key.Name + "/",
			Replicas: g.platform.Replicas(key), ReadyReplicas: len(eps),
		}
		if v, ok := g.agents.Load(key); ok {
			st := v.(*agentState)
			s.Held, s.RequestsTotal = st.held.Load(), st.requests.Load()
			if ns := st.lastRequest.Load(); ns > 0 {
				t := time.Unix(0, ns).UTC()
				s.LastInvocationAt = &t
			}
		}
		out = append(out, s)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
