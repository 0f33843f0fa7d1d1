package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
	"github.com/flint-dev/flint/internal/proxy"
	"github.com/flint-dev/flint/internal/wire"
)

// TestSidecarRefusesTrafficThatBypassesTheGateway: with a shared token, the
// sidecar answers 403 to callers that go around the gateway, serves the
// gateway, and the agent never sees the token.
func TestSidecarRefusesTrafficThatBypassesTheGateway(t *testing.T) {
	const token = "0123456789abcdef-secret"
	var seen http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	cfg := proxy.DefaultConfig()
	cfg.UpstreamAddr, cfg.GatewayToken = up.Listener.Addr().String(), token
	sc := platformtest.RunSidecar(t, cfg)

	p := platformtest.New(testAgent(0))
	p.SetReady(echoKey, platform.Endpoint{Addr: sc.ServingAddr(), AdminAddr: sc.AdminAddr(), Replica: "echo-1"})
	_, gw := startGateway(t, p, nil, func(c *Config) { c.SidecarToken = token })
	c := client(t)

	for _, h := range []string{"", "wrong-token-of-some-length"} {
		req, _ := http.NewRequest("GET", "http://"+sc.ServingAddr()+"/", nil)
		if h != "" {
			req.Header.Set(wire.HeaderGatewayToken, h)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("direct request with token %q: %d, want 403", h, res.StatusCode)
		}
	}
	res, err := c.Get(gw.URL + "/v1/agents/default/echo/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("through the gateway: %d", res.StatusCode)
	}
	if seen.Get(wire.HeaderGatewayToken) != "" {
		t.Error("the agent saw the gateway token")
	}
}
