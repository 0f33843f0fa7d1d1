package proxy

import (
	"net/http"
	"testing"

	"github.com/flint-dev/flint/internal/wire"
)

// TestAgentCannotSetFlintMarkers: every X-Flint-* header an agent sets, in
// headers or trailers, is removed, so the gateway never mistakes an agent's
// answer for the sidecar's "never saw it" rejection and resends the request.
func TestAgentCannotSetFlintMarkers(t *testing.T) {
	agent := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set(wire.HeaderRejected, wire.RejectCapacity)
		h.Set("x-flint-queue-wait", "1h")
		h["x-flint-raw"] = []string{"not canonical"}
		h.Set("Trailer", wire.HeaderRejected)
		h.Set("X-Agent", "kept")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("busy downstream\n"))
		h.Set(wire.HeaderRejected, wire.RejectShutdown) // a trailer
	}))
	s := startSidecar(t, testConfig(hostOf(agent)), true)
	r := get(t, newClient(t), "http://"+s.ServingAddr()+"/")
	if r.code != http.StatusServiceUnavailable || r.body != "busy downstream\n" || r.header.Get("X-Agent") != "kept" {
		t.Fatalf("got %d %v %q, want the agent's own answer", r.code, r.header, r.body)
	}
	for k, v := range r.header {
		if len(k) >= 8 && http.CanonicalHeaderKey(k[:8]) == "X-Flint-" {
			t.Errorf("the agent's %s: %v passed the sidecar", k, v)
		}
	}
}
