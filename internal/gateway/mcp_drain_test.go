package gateway

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
)

// A draining replica keeps serving the sessions it issued but gets no new
// session; when it leaves the draining list its session stream ends
// cleanly and its sessions get 404.
func TestMCPDrainingReplicaServesItsSessionsOnly(t *testing.T) {
	p := &drainingPlatform{Platform: platformtest.New(mcpTestAgent(v1alpha1.ProtocolMCP))}
	a, b := startMCPReplica(t, "tools-1", false), startMCPReplica(t, "tools-2", false)
	p.SetReady(mcpKey, a.ep, b.ep)
	_, gw := startGateway(t, p, nil, nil)

	onA := sessionOn(t, gw.URL, a.name)
	stream := openSessionStream(t, gw.URL, onA.ID())

	// a starts draining.
	p.SetReady(mcpKey, b.ep)
	p.draining.Set(mcpKey, []platform.Endpoint{a.ep})
	for range 20 {
		if who, err := whoami(t, onA); err != nil || who.Replica != a.name {
			t.Fatalf("session on the draining replica: %+v %v", who, err)
		}
	}
	for range 10 {
		cs := mustConnectMCP(t, mcpURL(gw.URL))
		if who, err := whoami(t, cs); err != nil || who.Replica != b.name {
			t.Fatalf("a new session went to %+v (%v); want %s, the draining replica takes none", who, err, b.name)
		}
	}

	// a stops: its stream ends cleanly, its session is gone.
	p.draining.Set(mcpKey, nil)
	select {
	case err := <-stream:
		if err != nil {
			t.Errorf("session stream ended with %v, want a clean end", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("session stream still open after its replica left")
	}
	if _, err := whoami(t, onA); !errors.Is(err, mcp.ErrSessionMissing) {
		t.Errorf("after draining: %v, want ErrSessionMissing", err)
	}
}

// sessionOn connects until a session lands on the named replica.
func sessionOn(t *testing.T, base, replica string) *mcp.ClientSession {
	t.Helper()
	for range 50 {
		cs := mustConnectMCPWithoutStream(t, mcpURL(base))
		if who, err := whoami(t, cs); err == nil && who.Replica == replica {
			return cs
		}
	}
	t.Fatalf("no session landed on %s", replica)
	return nil
}

// openSessionStream opens a session's standalone stream (GET) and reports
// how it ended: nil for a clean end of the HTTP response.
func openSessionStream(t *testing.T, base, sessionID string) <-chan error {
	t.Helper()
	res := rawMCP(t, base, http.MethodGet, sessionID, "")
	if res.StatusCode != http.StatusOK || !isEventStream(res.Header) {
		t.Fatalf("GET stream: %d %v", res.StatusCode, res.Header)
	}
	ended := make(chan error, 1)
	go func() {
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
		}
		ended <- sc.Err()
	}()
	return ended
}

// A session survives a gateway restart: a new gateway with the same key
// routes it to the same replica, with no state shared between the two.
// With another key the session is not recognised (404).
func TestMCPSessionSurvivesGatewayRestart(t *testing.T) {
	p := platformtest.New(mcpTestAgent(v1alpha1.ProtocolMCP))
	a, b := startMCPReplica(t, "tools-1", false), startMCPReplica(t, "tools-2", false)
	p.SetReady(mcpKey, a.ep, b.ep)
	key := writeSessionKey(t, strings.Repeat("k", 40))
	withKey := func(file string) func(*Config) { return func(c *Config) { c.MCP.SessionKeyFile = file } }

	old := startGatewayOn(t, p, withKey(key))
	target := &switchingTransport{base: &http.Transport{}}
	target.to.Store(old.Listener.Addr().String())
	hc := &http.Client{Transport: target}
	t.Cleanup(target.base.CloseIdleConnections)
	cs, err := connectMCP(t, mcpURL("http://gateway"), hc, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := whoami(t, cs)
	if err != nil {
		t.Fatal(err)
	}

	// Restart: shut the old gateway down gracefully (its session streams
	// end at once, so this is quick) and send the client to a new one.
	successor := startGatewayOn(t, p, withKey(key))
	target.to.Store(successor.Listener.Addr().String())
	// Not 5s: Shutdown waits that long for a spare connection the client
	// dialled but never used (see TestMCPGatewayShutdownEndsSessionStreams).
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	if err := old.Config.Shutdown(ctx); err != nil {
		t.Fatalf("old gateway did not shut down: %v", err)
	}
	t.Logf("gateway with an open session stream shut down in %s", time.Since(start).Round(time.Millisecond))
	for i := range 20 {
		who, err := whoami(t, cs)
		if err != nil || who != first {
			t.Fatalf("call %d after the restart: %+v %v; want %+v", i, who, err, first)
		}
	}

	// A gateway with another key cannot read the session: 404.
	stranger := startGatewayOn(t, p, withKey(writeSessionKey(t, strings.Repeat("z", 40))))
	res := rawMCP(t, stranger.URL, http.MethodPost, cs.ID(), `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	assertSessionNotFound(t, res)
}

// startGatewayOn serves a gateway over p with the gateway's own server.
func startGatewayOn(t *testing.T, p platform.Platform, mutate func(*Config)) *httptest.Server {
	_, srv := startGateway(t, p, nil, mutate)
	return srv
}

// switchingTransport sends every request to the address in to, whatever
// its URL says: a client whose gateway is replaced behind one name.
type switchingTransport struct {
	base *http.Transport
	to   atomic.Value // string
}

func (s *switchingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	out.URL.Host = s.to.Load().(string)
	return s.base.RoundTrip(out)
}

// A session's standalone stream outlives timeouts.request, kept alive by
// comments while silent; calls are still bounded, and a call's stream that
// runs out of time ends cleanly.
func TestMCPSessionStreamOutlivesRequestTimeout(t *testing.T) {
	agent := mcpTestAgent(v1alpha1.ProtocolMCP)
	agent.Spec.Timeouts.Request = &metav1.Duration{Duration: 300 * time.Millisecond}
	p := platformtest.New(agent)
	p.SetReady(mcpKey, startMCPReplica(t, "tools-1", false).ep)
	_, gw := startGateway(t, p, nil, func(c *Config) { c.MCP.SSEKeepAlive = 100 * time.Millisecond })
	cs := mustConnectMCPWithoutStream(t, mcpURL(gw.URL))

	res := rawMCP(t, gw.URL, http.MethodGet, cs.ID(), "")
	defer res.Body.Close()
	if res.Header.Get("X-Accel-Buffering") != "no" {
		t.Errorf("stream headers: %v", res.Header)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	keepAlives := 0
	deadline := time.After(time.Second) // > 3 x timeouts.request
	for waiting := true; waiting; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the session stream ended within a second; timeouts.request is 300ms")
			}
			if l == ": keep-alive" {
				keepAlives++
			}
		case <-deadline:
			waiting = false
		}
	}
	if keepAlives < 5 {
		t.Errorf("%d keep-alives in a silent second at a 100ms interval", keepAlives)
	}

	// A call longer than timeouts.request: its stream ends cleanly at the
	// limit (the SDK then reports the call as terminated, not a broken pipe).
	call := rawMCP(t, gw.URL, http.MethodPost, cs.ID(),
		`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"countdown","arguments":{"from":10,"intervalMs":100}}}`)
	defer call.Body.Close()
	start := time.Now()
	sc := bufio.NewScanner(call.Body)
	for sc.Scan() {
	}
	if err := sc.Err(); err != nil {
		t.Errorf("a call's stream cut at timeouts.request ended with %v, want a clean end", err)
	}
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Errorf("a 1s call ran %s; timeouts.request is 300ms", took)
	}
}

// The gateway shutting down ends session streams cleanly and at once
// rather than holding the shutdown until its deadline.
func TestMCPGatewayShutdownEndsSessionStreams(t *testing.T) {
	p := platformtest.New(mcpTestAgent(v1alpha1.ProtocolMCP))
	p.SetReady(mcpKey, startMCPReplica(t, "tools-1", false).ep)
	_, gw := startGateway(t, p, nil, nil)
	cs := mustConnectMCPWithoutStream(t, mcpURL(gw.URL))
	stream := openSessionStream(t, gw.URL, cs.ID())

	// What must be prompt is the stream's end. Shutdown itself may wait
	// 5s more, by net/http's design, for a connection the client dialled
	// but never sent a request on (its transport dials while it waits for
	// an idle connection and keeps the spare), so its deadline is longer.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- gw.Config.Shutdown(ctx) }()
	select {
	case err := <-stream:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("stream ended with %v, want a clean end", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the session stream was still open 3s into shutdown")
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("shutdown with open session streams: %v", err)
	}
}

// A session whose replica is full waits for it (the session cannot move)
// instead of being told it is gone.
func TestMCPSessionWaitsForItsFullReplica(t *testing.T) {
	p := platformtest.New(mcpTestAgent(v1alpha1.ProtocolMCP))
	p.SetReady(mcpKey, startCappedMCPReplica(t, "tools-1", false, 1).ep)
	_, gw := startGateway(t, p, nil, nil)
	cs := mustConnectMCPWithoutStream(t, mcpURL(gw.URL))

	busy := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "countdown", Arguments: countdownIn{From: 3, IntervalMs: 100}})
		busy <- err
	}()
	time.Sleep(100 * time.Millisecond) // the countdown holds the replica's only slot
	start := time.Now()
	who, err := whoami(t, cs)
	if err != nil || who.Replica != "tools-1" {
		t.Fatalf("call on a full replica: %+v %v; want it to wait and succeed", who, err)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("answered after %s: the replica was not full", waited)
	}
	if err := <-busy; err != nil {
		t.Fatal(err)
	}
}
