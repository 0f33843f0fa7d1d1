package proxy

import (
	"io"
	"net/http"
	"testing"

	"github.com/flint-dev/flint/internal/wire"
)

// TestAgentNeverSeesTheGatewayToken: a sidecar configured without a token
// still removes the gateway's token before the agent sees the request (a
// gateway given a token reaches sidecars that were started before it).
func TestAgentNeverSeesTheGatewayToken(t *testing.T) {
	seen := make(chan string, 1)
	agent := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get(wire.HeaderGatewayToken)
	}))
	s := startSidecar(t, testConfig(hostOf(agent)), true)
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.ServingAddr()+"/x", nil)
	req.Header.Set(wire.HeaderGatewayToken, "a-gateway-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := <-seen; got != "" {
		t.Errorf("the agent saw %s: %q", wire.HeaderGatewayToken, got)
	}
}

// TestOnlyGatewayRequestsCountInStats: with bypass protection on, the
// autoscaler reads load from the gateways alone and no longer scrapes a
// quiet agent's sidecars (docs/autoscaling.md). That holds because nothing
// else counts in Stats: a request without the token is refused before
// admission, and probes (the kubelet's of /readyz and /healthz on the admin
// port, the sidecar's own of the agent) are not requests. Only the
// gateway's request does.
func TestOnlyGatewayRequestsCountInStats(t *testing.T) {
	const token = "a-gateway-token-0123456789"
	agent := upstream(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	cfg := testConfig(hostOf(agent))
	cfg.GatewayToken = token
	s := startSidecar(t, cfg, true)
	send := func(url, tok string) int {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if tok != "" {
			req.Header.Set(wire.HeaderGatewayToken, tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 5 {
		if code := send("http://"+s.ServingAddr()+"/x", ""); code != http.StatusForbidden {
			t.Fatalf("request without the token: %d, want 403", code)
		}
		send("http://"+s.AdminAddr()+wire.PathReadyz, "")
		send("http://"+s.AdminAddr()+wire.PathHealthz, "")
	}
	if st := s.Stats(); st.RequestsTotal != 0 || st.InFlightSeconds != 0 || st.RejectedTotal != 0 {
		t.Errorf("stats after refused requests and probes: %+v, want no request, no load", st)
	}
	if code := send("http://"+s.ServingAddr()+"/x", token); code != http.StatusOK {
		t.Fatalf("request with the token: %d", code)
	}
	if st := s.Stats(); st.RequestsTotal != 1 {
		t.Errorf("stats after one request through the gateway: %d requests, want 1", st.RequestsTotal)
	}
}
