package gateway

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
	InFlight         int64      `json:"inFlight"`                  // at replicas, sent by this gateway
	DesiredReplicas  *int32     `json:"desiredReplicas,omitempty"` // the autoscaler's latest decision, when known
	Failure          *Failure   `json:"failure,omitempty"`         // why it cannot serve, when the platform knows (describe.go)
	RequestsTotal    uint64     `json:"requestsTotal"`
	LastInvocationAt *time.Time `json:"lastInvocationAt,omitempty"`
}

func (g *Gateway) adminMux(reg prometheus.Registerer) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", g.readyz)
	gw := g
	if g, ok := reg.(prometheus.Gatherer); ok {
		// Series carry every agent's name: with authentication on, only
		// callers with credentials may read them (no agent enumeration) —
		// unless the admin endpoints have a port of their own
		// (AdminHandler), which only the network reaches, and which
		// scrapers read without a key as they do every other target.
		metrics := promhttp.HandlerFor(g, promhttp.HandlerOpts{})
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
			if gw.adminSeparate.Load() || gw.authenticated(w, r) {
				metrics.ServeHTTP(w, r)
			}
		})
	}
	mux.HandleFunc("GET /v1/agents", g.listAgents)
	// The CLI's and dashboard's views (describe.go, dashboard.go).
	mux.HandleFunc("GET /api/v1/agents", g.listAgents)
	mux.HandleFunc("GET "+DescribePath+"{namespace}/{name}", g.describeAgent)
	g.mountDashboard(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		(&gatewayError{status: http.StatusNotFound, reason: "NotFound",
			message: "no such path: invoke agents at " + RoutePrefix + "{namespace}/{name}/"}).write(w)
	})
	return mux
}

// syncer is a platform that fills its view of agents asynchronously (the
// kube platform's informers).
type syncer interface{ HasSynced() bool }

// readyz fails until the platform has seen every agent and endpoint: before
// that, the gateway would answer 404 for agents that exist. It fails again
// once the gateway drains, to take it out of load balancing.
func (g *Gateway) readyz(w http.ResponseWriter, _ *http.Request) {
	if g.draining.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	if s, ok := g.platform.(syncer); ok && !s.HasSynced() {
		http.Error(w, "agents and endpoints not synced yet", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ok\n"))
}

func (g *Gateway) listAgents(w http.ResponseWriter, r *http.Request) {
	if !g.authenticated(w, r) {
		return
	}
	agents := g.platform.Agents()
	out := make([]AgentSummary, 0, len(agents))
	for _, a := range agents {
		out = append(out, g.summarize(a)) // describe.go
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
