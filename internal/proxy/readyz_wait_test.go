package proxy

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testutil"
	"github.com/flint-dev/flint/internal/wire"
)

// The kubelet's probe asks /readyz to wait: while the agent starts it is
// held and passes as soon as the agent answers, instead of failing (each
// failure is a kubelet Warning event); once the agent has answered, and
// while draining, it answers at once.
func TestReadyzWaitsForTheAgentsFirstAnswer(t *testing.T) {
	addr := testutil.FreeAddr(t)
	var failing atomic.Bool
	agent := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	cfg := testConfig(addr)
	cfg.ProbePath = "/healthz"
	s := startSidecar(t, cfg, false)
	c := newClient(t)
	probe := "http://" + s.AdminAddr() + wire.PathReadyz + "?" + wire.QueryReadyzWait + "=5s"

	// Without the parameter nothing changes: not ready yet, at once.
	if r := get(t, c, "http://"+s.AdminAddr()+wire.PathReadyz); r.code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before the agent: %d", r.code)
	}
	const late = 300 * time.Millisecond
	go func() {
		time.Sleep(late)
		serveOn(t, addr, agent)
	}()
	start := time.Now()
	r := get(t, c, probe)
	if d := time.Since(start); r.code != http.StatusOK || d < late/2 || d > 4*time.Second {
		t.Fatalf("waiting probe: %d after %s, want 200 once the agent answers (~%s)", r.code, d, late)
	}

	// A short wait that runs out fails as before.
	cfg2 := testConfig(testutil.FreeAddr(t))
	cfg2.DrainDelay = 2 * time.Second
	s2 := startSidecar(t, cfg2, false)
	start = time.Now()
	if r := get(t, c, "http://"+s2.AdminAddr()+wire.PathReadyz+"?"+wire.QueryReadyzWait+"=200ms"); r.code != http.StatusServiceUnavailable || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("probe whose wait ran out: %d after %s", r.code, time.Since(start))
	}
	// Draining answers at once, waiting or not.
	s2.Drain()
	start = time.Now()
	if r := get(t, c, "http://"+s2.AdminAddr()+wire.PathReadyz+"?"+wire.QueryReadyzWait+"=5s"); r.code != http.StatusServiceUnavailable || time.Since(start) > time.Second {
		t.Fatalf("probe while draining: %d after %s", r.code, time.Since(start))
	}

	// Once the agent has answered, losing it is reported without waiting.
	failing.Store(true)
	testutil.WaitFor(t, "the agent to count as not answering", func() bool { return !s.Ready() })
	start = time.Now()
	if r := get(t, c, probe); r.code != http.StatusServiceUnavailable || time.Since(start) > time.Second {
		t.Fatalf("probe after the agent stopped answering: %d after %s, want 503 at once", r.code, time.Since(start))
	}
}
