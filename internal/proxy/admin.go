package proxy

import (
	"encoding/json"
	"net/http"

	"github.com/flint-dev/flint/internal/wire"
)

func (s *Sidecar) adminHandler() http.Handler {
	mux := http.NewServeMux()
	// Liveness stays green while draining: failing it would make the kubelet
	// kill the sidecar in the middle of the drain it is supposed to finish.
	mux.HandleFunc("GET "+wire.PathHealthz, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"alive": true})
	})
	mux.HandleFunc("GET "+wire.PathReadyz, s.handleReadyz)
	mux.HandleFunc("GET "+wire.PathStats, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.Handle("GET "+wire.PathMetrics, s.metrics.handler())
	mux.HandleFunc("POST "+wire.PathDrain, func(w http.ResponseWriter, _ *http.Request) {
		s.Drain()
		writeJSON(w, http.StatusAccepted, map[string]any{"draining": true})
	})
	mux.HandleFunc("GET "+wire.PathWaitForDrain, s.handleWaitForDrain)
	return mux
}

func (s *Sidecar) handleReadyz(w http.ResponseWriter, r *http.Request) {
	s.waitFirstReady(r) // readyz_wait.go
	type readyz struct {
		Ready  bool   `json:"ready"`
		Reason string `json:"reason,omitempty"`
	}
	switch {
	case s.draining.Load():
		writeJSON(w, http.StatusServiceUnavailable, readyz{Reason: "draining"})
	case !s.gate.isReady():
		writeJSON(w, http.StatusServiceUnavailable, readyz{Reason: "agent at " + s.cfg.UpstreamAddr + " is not answering its readiness probe"})
	default:
		writeJSON(w, http.StatusOK, readyz{Ready: true})
	}
}

// handleWaitForDrain is the agent container's preStop hook: it returns once
// the sidecar has finished draining, so the agent outlives every request
// routed to it. It also starts the drain, because with native sidecar
// ordering Kubernetes stops the agent before it signals the sidecar; a
// preStop only runs when the agent is going away, so draining is right then.
func (s *Sidecar) handleWaitForDrain(w http.ResponseWriter, r *http.Request) {
	s.Drain()
	select {
	case <-s.drained:
		writeJSON(w, http.StatusOK, map[string]any{"drained": true})
	case <-r.Context().Done():
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header()["Content-Type"] = jsonContentType
	w.Header()["Cache-Control"] = []string{"no-store"}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
