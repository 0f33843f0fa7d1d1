package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Waves of concurrent requests, more than a small idle pool would keep,
// reuse the sidecar's connections to the agent instead of re-dialling the
// surplus every wave.
func TestUpstreamConnectionsReusedAcrossWaves(t *testing.T) {
	const concurrent, waves = 150, 3
	var dials atomic.Int64
	agent := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // long enough for every request of a wave to be in flight at once
		_, _ = io.WriteString(w, "ok")
	}))
	agent.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	agent.Start()
	t.Cleanup(agent.Close)
	cfg := testConfig(hostOf(agent))
	cfg.ProbeRecheckInterval = time.Minute // TCP probes dial too; keep them out of the count
	s := startSidecar(t, cfg, true)

	tr := &http.Transport{MaxIdleConnsPerHost: concurrent, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for range waves {
		var wg sync.WaitGroup
		for range concurrent {
			wg.Go(func() {
				if r := get(t, c, "http://"+s.ServingAddr()+"/"); r.code != http.StatusOK {
					t.Errorf("status %d", r.code)
				}
			})
		}
		wg.Wait()
	}
	// One connection per concurrent request, plus the start-up probes'
	// (a TCP probe dials and closes); a pool of 100 made it ~250.
	if n := dials.Load(); n > concurrent+5 {
		t.Errorf("the agent saw %d connections for %d waves of %d concurrent requests, want about %d", n, waves, concurrent, concurrent)
	}
}
