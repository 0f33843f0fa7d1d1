package proxy

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/testutil"
	"github.com/flint-dev/flint/internal/wire"
)

func TestAdminEndpoints(t *testing.T) {
	agent := newGated()
	cfg := testConfig(hostOf(upstream(t, agent)))
	cfg.Concurrency = 1
	s := startSidecar(t, cfg, true)
	c := newClient(t)
	admin, serving := "http://"+s.AdminAddr(), "http://"+s.ServingAddr()

	held := make(chan response, 1)
	go func() { held <- get(t, c, serving+"/hold") }()
	agent.waitArrivals(t, 1)
	if r := get(t, c, serving+"/fast"); r.code != http.StatusServiceUnavailable {
		t.Fatalf("want a capacity rejection, got %d", r.code)
	}
	agent.release <- struct{}{}
	<-held
	testutil.WaitFor(t, "idle", func() bool { return s.Stats().InFlight == 0 })

	if r := get(t, c, admin+wire.PathHealthz); r.code != http.StatusOK {
		t.Errorf("/healthz: %d", r.code)
	}
	if r := get(t, c, admin+wire.PathReadyz); r.code != http.StatusOK || !strings.Contains(r.body, `"ready":true`) {
		t.Errorf("/readyz: %d %s", r.code, r.body)
	}

	r := get(t, c, admin+wire.PathStats)
	var st wire.Stats
	if err := json.Unmarshal([]byte(r.body), &st); err != nil || r.code != http.StatusOK {
		t.Fatalf("/stats: %d %s %v", r.code, r.body, err)
	}
	if st.RequestsTotal != 1 || st.RejectedTotal != 1 || st.Concurrency != 1 || !st.Ready || st.Draining ||
		st.InFlightSeconds <= 0 || st.UptimeSeconds <= 0 {
		t.Errorf("/stats = %+v", st)
	}

	r = get(t, c, admin+wire.PathMetrics)
	for _, want := range []string{
		`flint_sidecar_requests_total{code="200"} 1`,
		`flint_sidecar_requests_total{code="503"} 1`,
		`flint_sidecar_rejected_total{reason="capacity"} 1`,
		`flint_sidecar_in_flight_requests 0`,
		`flint_sidecar_queued_requests 0`,
		`flint_sidecar_request_duration_seconds_count 2`,
		`flint_sidecar_concurrency_limit 1`,
		`flint_sidecar_ready 1`,
		`flint_sidecar_in_flight_seconds_total`,
		`flint_sidecar_connections_total{transport="plain"} 2`, // the second request came while the first held its connection
		`flint_sidecar_connections_total{transport="tls"} 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if r := get(t, c, admin+wire.PathDrain); r.code != http.StatusMethodNotAllowed {
		t.Errorf("GET /drain: %d, want 405 (only POST drains)", r.code)
	}
	if s.Draining() {
		t.Fatal("GET /drain drained")
	}
	if r := get(t, c, admin+"/anything-else"); r.code != http.StatusNotFound {
		t.Errorf("unknown admin path: %d", r.code)
	}
}
