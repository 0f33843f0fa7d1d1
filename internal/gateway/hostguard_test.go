package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flint-dev/flint/internal/hostcheck"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
)

// TestHostGuardRefusesRebinding: a gateway on loopback answers 403 JSON,
// naming the reason, to a Host that is not its own (a DNS-rebinding page)
// and to a cross-site Origin, on invocations and on its own endpoints, and
// counts them; its own names and -allowed-hosts pass.
func TestHostGuardRefusesRebinding(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("agent")) }))
	t.Cleanup(upstream.Close)
	p := platformtest.New(platformtest.Agent("default", "echo", 0))
	p.SetReady(platform.AgentKey{Namespace: "default", Name: "echo"}, startSidecar(t, upstream, 0, "echo-0"))
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.PublicURL = "https://flint.example.com"
	cfg.AllowedHosts = []string{"dev.box"}
	gw, err := New(cfg, p, nil, discardLogger(), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		path, host, origin string
		want               int
		reason             string
	}{
		{"/v1/agents/default/echo/x", "", "", 200, ""},
		{"/v1/agents/default/echo/x", "localhost:8080", "http://localhost:8080", 200, ""},
		{"/v1/agents/default/echo/x", "flint.example.com", "", 200, ""},
		{"/v1/agents/default/echo/x", "dev.box:8080", "", 200, ""},
		{"/v1/agents/default/echo/x", "evil.example.com:8080", "", 403, hostcheck.ReasonHost},
		{"/v1/agents", "evil.example.com", "", 403, hostcheck.ReasonHost},
		{"/ui", "rebind.attacker.test", "", 403, hostcheck.ReasonHost},
		{"/v1/agents/default/echo/x", "", "https://evil.example.com", 403, hostcheck.ReasonOrigin},
	} {
		req, _ := http.NewRequest("GET", srv.URL+tc.path, nil)
		if tc.host != "" {
			req.Host = tc.host
		}
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error, Reason string }
		_ = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != tc.want || body.Reason != tc.reason {
			t.Errorf("%s Host %q Origin %q: %d %q, want %d %q", tc.path, tc.host, tc.origin, res.StatusCode, body.Reason, tc.want, tc.reason)
		}
		if tc.want == 403 && (!strings.Contains(res.Header.Get("Content-Type"), "json") || !strings.Contains(body.Error, "-allowed-hosts")) {
			t.Errorf("%s: the refusal does not say what to do: %q", tc.host, body.Error)
		}
	}
	if got := testutil.ToFloat64(gw.hosts.refused.WithLabelValues(hostcheck.ReasonHost)); got != 3 {
		t.Errorf("flint_gateway_host_refused_total{reason=HostNotAllowed} = %v, want 3", got)
	}
	if got := testutil.ToFloat64(gw.hosts.refused.WithLabelValues(hostcheck.ReasonOrigin)); got != 1 {
		t.Errorf("flint_gateway_host_refused_total{reason=OriginNotAllowed} = %v, want 1", got)
	}
}

// TestHostGuardOffOnEveryInterface: a gateway listening on every interface
// (a pod) serves any Host; it relies on authentication instead.
func TestHostGuardOffOnEveryInterface(t *testing.T) {
	p := platformtest.New()
	cfg := DefaultConfig()
	cfg.Addr = ":8080"
	gw, err := New(cfg, p, nil, discardLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	req := httptest.NewRequest("GET", "/v1/agents", nil)
	req.Host = "flint.agents.svc.cluster.local"
	w := httptest.NewRecorder()
	gw.Handler().ServeHTTP(w, req)
	if w.Code != 200 {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}
