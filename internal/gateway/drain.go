package gateway

import (
	"net/http"

	"github.com/flint-dev/flint/internal/upgrade"
)

// Drain starts the gateway's leaving: /readyz fails, so a load balancer
// or a Service that follows readiness stops sending new connections, and
// every HTTP/1 response closes its connection, so keep-alive clients
// reconnect (and land on another gateway) instead of writing on a
// connection the eventual shutdown closes. Everything is still served.
func (g *Gateway) Drain() { g.draining.Store(true) }

var connectionClose = []string{"close"}

// closeWhenDraining marks the response to close its connection while the
// gateway drains. Not for upgrades: their 101 must keep "Connection:
// Upgrade", and the tunnel's life is its own.
func (g *Gateway) closeWhenDraining(w http.ResponseWriter, r *http.Request) {
	if g.draining.Load() && r.ProtoMajor == 1 && upgrade.Protocol(r.Header) == "" {
		w.Header()["Connection"] = connectionClose
	}
}
