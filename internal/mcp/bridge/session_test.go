package bridge

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/flint-dev/flint/internal/testutil"
)

func post(t *testing.T, url, session, version, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	if version != "" {
		req.Header.Set("Mcp-Protocol-Version", version)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`

// A stateless-era request gets the spec's unsupported-version error with
// the session-era versions, which is what makes dual-era clients fall back.
func TestBridgeAnswersStatelessRequestsWithVersionError(t *testing.T) {
	tb := startBridge(t, nil)
	res := post(t, tb.url, "", "2026-07-28", `{"jsonrpc":"2.0","id":3,"method":"server/discover","params":{}}`)
	var body struct {
		ID    int `json:"id"`
		Error struct {
			Code int `json:"code"`
			Data struct {
				Supported []string `json:"supported"`
			} `json:"data"`
		} `json:"error"`
	}
	_ = json.NewDecoder(res.Body).Decode(&body)
	if res.StatusCode != http.StatusBadRequest || body.ID != 3 || body.Error.Code != -32022 || len(body.Error.Data.Supported) == 0 {
		t.Errorf("stateless request: %d %+v", res.StatusCode, body)
	}
	if res := post(t, tb.url, "", "2025-11-25", `{"jsonrpc":"2.0","id":4,"method":"tools/list"}`); res.StatusCode != http.StatusBadRequest {
		t.Errorf("a call without a session: %d, want 400", res.StatusCode)
	}
	if res := post(t, tb.url, "NOSUCHSESSION", "2025-11-25", `{"jsonrpc":"2.0","id":5,"method":"tools/list"}`); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown session: %d, want 404", res.StatusCode)
	}
}

func TestBridgeCapsSessions(t *testing.T) {
	tb := startBridge(t, func(c *Config) { c.MaxSessions = 2 })
	tb.waitReady(t)
	tb.connect(t, nil)
	tb.connect(t, nil)
	res := post(t, tb.url, "", "", initializeBody)
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Errorf("third session: %d %v, want 503 with Retry-After", res.StatusCode, res.Header)
	}
}

// A child that dies takes its session with it: 404, and a new session gets
// a new child.
func TestBridgeChildExitEndsItsSession(t *testing.T) {
	tb := startBridge(t, nil)
	tb.waitReady(t)
	cs := tb.connect(t, nil)
	pid, err := callInt(t, cs, "whoami", "pid", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = cs.CallTool(ctx, &mcp.CallToolParams{Name: "crash"})
	testutil.WaitFor(t, "the crashed child's session to end", func() bool { return tb.count() == 0 })
	if res := post(t, tb.url, cs.ID(), "2025-11-25", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); res.StatusCode != http.StatusNotFound {
		t.Errorf("session of a crashed child: %d, want 404", res.StatusCode)
	}
	again, err := callInt(t, tb.connect(t, nil), "whoami", "pid", nil)
	if err != nil || again == pid {
		t.Errorf("new session after a crash: pid %d (old %d), %v", again, pid, err)
	}
}

func TestBridgeEndsIdleSessions(t *testing.T) {
	tb := startBridge(t, func(c *Config) { c.SessionIdleTimeout = 200 * time.Millisecond })
	tb.waitReady(t)
	res := post(t, tb.url, "", "", initializeBody)
	_, _ = io.Copy(io.Discard, res.Body)
	if res.Header.Get("Mcp-Session-Id") == "" {
		t.Fatalf("initialize: %d %v", res.StatusCode, res.Header)
	}
	testutil.WaitFor(t, "the idle session to be ended", func() bool { return tb.count() == 0 })
	if !strings.Contains(tb.stderr.String(), "idle for") {
		t.Errorf("no log of ending the idle session:\n%s", tb.stderr.String())
	}
}

// Notifications the server sends during a call reach the client, on the
// session's standalone stream (see relayToClient).
func TestBridgeRelaysNotifications(t *testing.T) {
	tb := startBridge(t, nil)
	tb.waitReady(t)
	var got atomic.Int32
	cs := tb.connect(t, &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) { got.Add(1) },
	})
	time.Sleep(100 * time.Millisecond) // the client opens its standalone stream after initialize
	params := &mcp.CallToolParams{Name: "slow", Arguments: map[string]int{"id": 1, "ms": 50}}
	params.SetProgressToken("p")
	if _, err := cs.CallTool(context.Background(), params); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the progress notification", func() bool { return got.Load() == 1 })
}

func TestConfigBudgetMustFitGracePeriod(t *testing.T) {
	cfg := DefaultConfig()
	cfg.GracePeriod, cfg.ChildStopWait = 10*time.Second, 2*time.Second
	if err := cfg.Validate(); err != nil || cfg.drainTimeout() != 5*time.Second {
		t.Errorf("derived drain timeout %s, %v; want 10s - 2x2s - 1s = 5s", cfg.drainTimeout(), err)
	}
	cfg.DrainTimeout = 3 * time.Second
	if cfg.drainTimeout() != 3*time.Second {
		t.Errorf("explicit drain timeout ignored: %s", cfg.drainTimeout())
	}
	cfg.DrainTimeout = 6 * time.Second
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "-grace-period") {
		t.Errorf("a budget over the grace period was accepted: %v", err)
	}
	cfg = DefaultConfig()
	cfg.GracePeriod = 4 * time.Second
	if err := cfg.Validate(); err == nil {
		t.Error("a grace period that leaves no drain time was accepted")
	}
	if _, err := New(DefaultConfig(), nil, nil, nil); err == nil || !strings.Contains(err.Error(), "--") {
		t.Errorf("no command: %v", err)
	}
}
