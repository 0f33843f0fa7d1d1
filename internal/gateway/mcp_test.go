package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
)

// Every call of a session reaches the replica that issued it, across three
// replicas and many concurrent sessions; sessions spread over replicas.
func TestMCPSessionAffinityOverManyCalls(t *testing.T) {
	p := platformtest.New(mcpTestAgent(v1alpha1.ProtocolMCP))
	var reps []*mcpReplica
	for _, name := range []string{"tools-1", "tools-2", "tools-3"} {
		reps = append(reps, startMCPReplica(t, name, false))
	}
	p.SetReady(mcpKey, reps[0].ep, reps[1].ep, reps[2].ep)
	_, gw := startGateway(t, p, nil, nil)

	const sessions, calls = 12, 100
	// Baseline: the same load straight at one server, without Flint.
	direct := runSessions(t, sessions, calls, func() *mcp.ClientSession { return mustConnectMCP(t, reps[0].upstream) })

	var mu sync.Mutex
	perReplica := map[string]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for range sessions {
		wg.Go(func() {
			cs := mustConnectMCP(t, mcpURL(gw.URL))
			first, err := whoami(t, cs)
			if err != nil {
				t.Error(err)
				return
			}
			if cs.ID() == first.Session || cs.ID() == "" {
				t.Errorf("client holds session id %q; want a gateway token, not the replica's %q", cs.ID(), first.Session)
			}
			for i := 1; i < calls; i++ {
				got, err := whoami(t, cs)
				if err != nil {
					t.Errorf("call %d: %v", i, err)
					return
				}
				if got != first {
					t.Errorf("call %d of a session on %s reached %s (session %s)", i, first.Replica, got.Replica, got.Session)
					return
				}
			}
			mu.Lock()
			perReplica[first.Replica]++
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%d sessions x %d calls: %.0f calls/s through gateway + sidecar, %.0f calls/s straight to one server; sessions per replica %v",
		sessions, calls, float64(sessions*calls)/elapsed.Seconds(), float64(sessions*calls)/direct.Seconds(), perReplica)
	if len(perReplica) < 2 {
		t.Errorf("all sessions landed on %v: initialize is not balanced", perReplica)
	}
}

// runSessions runs calls whoami calls on each of n sessions at once and
// returns how long they took.
func runSessions(t *testing.T, n, calls int, connect func() *mcp.ClientSession) time.Duration {
	t.Helper()
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Go(func() {
			cs := connect()
			for range calls {
				if _, err := whoami(t, cs); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// A session whose replica is gone gets 404; the client starts a new session
// and carries on.
func TestMCPSessionOfRemovedReplicaGets404ThenReinitializes(t *testing.T) {
	p := platformtest.New(mcpTestAgent(v1alpha1.ProtocolMCP))
	a, b := startMCPReplica(t, "tools-1", false), startMCPReplica(t, "tools-2", false)
	p.SetReady(mcpKey, a.ep, b.ep)
	_, gw := startGateway(t, p, nil, nil)

	cs := mustConnectMCP(t, mcpURL(gw.URL))
	who, err := whoami(t, cs)
	if err != nil {
		t.Fatal(err)
	}
	remaining := b.ep
	if who.Replica == b.name {
		remaining = a.ep
	}
	p.SetReady(mcpKey, remaining)

	res := rawMCP(t, gw.URL, http.MethodPost, cs.ID(), `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`)
	assertSessionNotFound(t, res)

	if _, err := whoami(t, cs); !errors.Is(err, mcp.ErrSessionMissing) {
		t.Fatalf("call on the removed replica's session: %v; want ErrSessionMissing", err)
	}
	cs2 := mustConnectMCP(t, mcpURL(gw.URL))
	again, err := whoami(t, cs2)
	if err != nil || again.Replica != remaining.Replica {
		t.Fatalf("after re-initializing: %+v %v; want %s", again, err, remaining.Replica)
	}
}

// Invalid, forged or foreign session ids get 404, never 500, for every method.
func TestMCPForgedSessionIDsGet404(t *testing.T) {
	other := mcpTestAgent(v1alpha1.ProtocolMCP)
	other.Name = "other"
	p := platformtest.New(mcpTestAgent(v1alpha1.ProtocolMCP), other)
	r := startMCPReplica(t, "tools-1", false)
	p.SetReady(mcpKey, r.ep)
	p.SetReady(platform.KeyOf(other), r.ep)
	g, gw := startGateway(t, p, nil, nil)

	cs := mustConnectMCP(t, mcpURL(gw.URL))
	who, err := whoami(t, cs)
	if err != nil {
		t.Fatal(err)
	}
	token := cs.ID()
	tampered := []byte(token)
	tampered[len(tampered)/2] ^= 0x01
	foreign := g.mcp.keys.Seal("default/other", routeOf(r.ep, who.Session))
	for name, id := range map[string]string{
		"garbage":        "not-a-token",
		"tampered":       string(tampered),
		"upstream id":    who.Session,
		"other agent's":  foreign,
		"oversized junk": strings.Repeat("x", 8000),
	} {
		for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
			res := rawMCP(t, gw.URL, method, id, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
			if res.StatusCode != http.StatusNotFound {
				t.Errorf("%s id, %s: status %d, want 404", name, method, res.StatusCode)
			}
			res.Body.Close()
		}
	}
	if _, err := whoami(t, cs); err != nil {
		t.Errorf("the real session broke: %v", err)
	}
}

// Stateless (2026-07-28) traffic has no session and is spread over replicas.
func TestMCPStatelessRequestsAreBalanced(t *testing.T) {
	p := platformtest.New(mcpTestAgent(v1alpha1.ProtocolMCP))
	reps := []*mcpReplica{startMCPReplica(t, "tools-1", true), startMCPReplica(t, "tools-2", true), startMCPReplica(t, "tools-3", true)}
	p.SetReady(mcpKey, reps[0].ep, reps[1].ep, reps[2].ep)
	_, gw := startGateway(t, p, nil, nil)

	cs := mustConnectMCP(t, mcpURL(gw.URL))
	if v := cs.InitializeResult().ProtocolVersion; v < "2026-07-28" {
		t.Fatalf("negotiated %s, want the stateless era", v)
	}
	seen := map[string]int{}
	for range 60 {
		who, err := whoami(t, cs)
		if err != nil {
			t.Fatal(err)
		}
		seen[who.Replica]++
	}
	if len(seen) != 3 {
		t.Errorf("60 stateless calls reached %v; want all three replicas", seen)
	}
}

// Progress notifications reach the client one by one as the tool sends
// them, and the stream is marked unbuffered for proxies in front.
func TestMCPProgressArrivesIncrementally(t *testing.T) {
	p := platformtest.New(mcpTestAgent(v1alpha1.ProtocolMCP))
	p.SetReady(mcpKey, startMCPReplica(t, "tools-1", false).ep)
	_, gw := startGateway(t, p, nil, nil)

	var mu sync.Mutex
	var arrivals []time.Time
	cs, err := connectMCP(t, mcpURL(gw.URL), nil, &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			arrivals = append(arrivals, time.Now())
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	params := &mcp.CallToolParams{Name: "countdown", Arguments: countdownIn{From: 5, IntervalMs: 150}}
	params.SetProgressToken("t1")
	start := time.Now()
	if _, err := cs.CallTool(context.Background(), params); err != nil {
		t.Fatal(err)
	}
	done := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	if len(arrivals) != 5 {
		t.Fatalf("%d progress notifications, want 5", len(arrivals))
	}
	first, last := arrivals[0].Sub(start), arrivals[4].Sub(start)
	t.Logf("progress at %s ... %s, result at %s", first.Round(time.Millisecond), last.Round(time.Millisecond), done.Round(time.Millisecond))
	if done-first < 450*time.Millisecond || last-first < 450*time.Millisecond {
		t.Errorf("notifications were not delivered as sent (first %s, spread %s)", first, last-first)
	}

	// The same call at the HTTP level: unbuffered, one event at a time.
	res := rawMCP(t, gw.URL, http.MethodPost, cs.ID(),
		`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"countdown","arguments":{"from":3,"intervalMs":100},"_meta":{"progressToken":"raw"}}}`)
	defer res.Body.Close()
	if res.Header.Get("X-Accel-Buffering") != "no" || !isEventStream(res.Header) {
		t.Errorf("stream headers: %v", res.Header)
	}
}

// rawMCP sends one MCP request with a session id and the headers a
// session-era client sends.
func rawMCP(t *testing.T, base, method, sessionID, body string) *http.Response {
	t.Helper()
	var rd io.Reader
	if method == http.MethodPost {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, mcpURL(base), rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	if sessionID != "" {
		req.Header.Set("Mcp-Session-Id", sessionID)
	}
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// assertSessionNotFound checks the gateway's 404 for a lost session: a
// JSON-RPC error with a null id, so clients re-initialize.
func assertSessionNotFound(t *testing.T, res *http.Response) {
	t.Helper()
	defer res.Body.Close()
	var body struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d, want 404", res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.JSONRPC != "2.0" || string(body.ID) != "null" || body.Error.Code != codeSessionNotFound || !strings.Contains(body.Error.Message, "initialize") {
		t.Errorf("404 body: %+v", body)
	}
}
