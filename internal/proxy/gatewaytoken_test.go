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
