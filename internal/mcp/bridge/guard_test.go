package bridge

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flint-dev/flint/internal/hostcheck"
)

// TestBridgeRefusesRebinding is the MCP conformance suite's DNS-rebinding
// check: on loopback the bridge answers 403, with the reason, to a Host
// that is not its own and to a cross-site Origin, before any child starts.
func TestBridgeRefusesRebinding(t *testing.T) {
	tb := startBridge(t, func(c *Config) { c.AllowedHosts = []string{"dev.box"} })
	tb.waitReady(t)
	for _, tc := range []struct {
		host, origin, reason string
	}{
		{"evil.example.com", "", hostcheck.ReasonHost},
		{"evil.example.com:8080", "", hostcheck.ReasonHost},
		{"", "http://evil.example.com", hostcheck.ReasonOrigin},
	} {
		req, _ := http.NewRequest(http.MethodPost, tb.url, strings.NewReader(initializeBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
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
		if res.StatusCode != http.StatusForbidden || body.Reason != tc.reason {
			t.Errorf("Host %q Origin %q: %d %q, want 403 %q", tc.host, tc.origin, res.StatusCode, body.Reason, tc.reason)
		}
	}
	if n := tb.count(); n != 0 {
		t.Errorf("%d sessions started by refused requests", n)
	}
	if got := testutil.ToFloat64(tb.metrics.refused.WithLabelValues(hostcheck.ReasonHost)); got != 2 {
		t.Errorf("flint_bridge_refused_total{reason=HostNotAllowed} = %v, want 2", got)
	}
	// Its own address and the allowed host pass.
	for _, host := range []string{"", "localhost", "dev.box:1234"} {
		req, _ := http.NewRequest(http.MethodPost, tb.url, strings.NewReader(initializeBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if host != "" {
			req.Host = host
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("Host %q: %d, want 200", host, res.StatusCode)
		}
	}
}

// TestBridgeEvictsIdleSessionsAtTheCap: clients that never DELETE their
// sessions do not lock the bridge out: at -max-sessions a new session
// replaces the one idle the longest, which then answers 404.
func TestBridgeEvictsIdleSessionsAtTheCap(t *testing.T) {
	tb := startBridge(t, func(c *Config) { c.MaxSessions = 2 })
	tb.waitReady(t)
	var ids []string
	for range 3 {
		res := post(t, tb.url, "", "", initializeBody)
		_, _ = io.Copy(io.Discard, res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("initialize: %d", res.StatusCode)
		}
		ids = append(ids, res.Header.Get("Mcp-Session-Id"))
		time.Sleep(20 * time.Millisecond) // distinct idle times
	}
	if n := tb.count(); n != 2 {
		t.Errorf("%d live sessions, want 2 (the cap)", n)
	}
	if res := post(t, tb.url, ids[0], "2025-11-25", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); res.StatusCode != http.StatusNotFound {
		t.Errorf("the evicted (oldest idle) session: %d, want 404", res.StatusCode)
	}
	if res := post(t, tb.url, ids[2], "2025-11-25", `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`); res.StatusCode != http.StatusOK {
		t.Errorf("the newest session: %d, want 200", res.StatusCode)
	}
	if got := testutil.ToFloat64(tb.metrics.ended.WithLabelValues("evicted")); got != 1 {
		t.Errorf("flint_bridge_sessions_ended_total{reason=evicted} = %v, want 1", got)
	}
	res, err := http.Get(tb.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), "flint_bridge_children 2") {
		t.Errorf("/metrics lacks flint_bridge_children 2:\n%s", b)
	}
}
