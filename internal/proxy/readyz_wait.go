package proxy

import (
	"net/http"
	"time"

	"github.com/flint-dev/flint/internal/wire"
)

// maxReadyzWait caps what a probe may ask to wait for, so a typo in a
// probe path cannot hold admin requests for long.
const maxReadyzWait = time.Minute

// waitFirstReady holds a readiness probe that asks to wait
// (wire.QueryReadyzWait) until the agent answers for the first time, the
// drain starts, the wait runs out or the caller leaves, whichever comes
// first. The kubelet records a Warning event for every failed probe, and a
// probe failing because the replica is still starting is no news: with the
// wait, a replica whose agent answers within it passes its first probe
// (as Knative's queue-proxy does for the kubelet's probe). Once the agent
// has answered, or while draining, /readyz answers at once, so losing the
// agent or draining is reported without delay.
func (s *Sidecar) waitFirstReady(r *http.Request) {
	q := r.URL.Query().Get(wire.QueryReadyzWait)
	if q == "" || s.gate.opened.Load() || s.draining.Load() {
		return
	}
	d, err := time.ParseDuration(q)
	if err != nil || d <= 0 {
		return
	}
	t := time.NewTimer(min(d, maxReadyzWait))
	defer t.Stop()
	select {
	case <-s.gate.wait():
	case <-s.drainReq:
	case <-t.C:
	case <-r.Context().Done():
	}
}
