package gateway

import (
	"io"
	"net/http"
	"testing"
)

// Draining takes the gateway out of load balancing while it still serves:
// /readyz fails, invocations are answered and close their connections so
// keep-alive clients reconnect elsewhere.
func TestDrainFailsReadinessAndClosesConnections(t *testing.T) {
	hits, _, p, _ := countingAgent(t)
	gw, srv := startGateway(t, p, nil, nil)
	c := client(t)
	get := func(path string) *http.Response {
		t.Helper()
		res, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}

	if res := get("/readyz"); res.StatusCode != 200 {
		t.Fatalf("/readyz before draining: %d", res.StatusCode)
	}
	if res := get("/v1/agents/default/echo/"); res.StatusCode != 200 || res.Close {
		t.Fatalf("before draining: %d, close=%v; want 200 on a kept-alive connection", res.StatusCode, res.Close)
	}

	gw.Drain()
	if res := get("/readyz"); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: %d, want 503", res.StatusCode)
	}
	before := hits.Load()
	for range 3 {
		res := get("/v1/agents/default/echo/")
		if res.StatusCode != 200 {
			t.Errorf("invocation while draining: %d, want 200", res.StatusCode)
		}
		if !res.Close {
			t.Errorf("a response while draining keeps its connection open (headers %v)", res.Header)
		}
	}
	if got := hits.Load() - before; got != 3 {
		t.Errorf("the agent saw %d of 3 invocations sent while draining", got)
	}
}
