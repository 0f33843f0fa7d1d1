package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/mcp/session"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
)

// mcpKey is the MCP agent of these tests.
var mcpKey = platform.AgentKey{Namespace: "default", Name: "tools"}

func mcpTestAgent(protocol v1alpha1.Protocol) *v1alpha1.Agent {
	a := testAgent(0)
	a.Namespace, a.Name = mcpKey.Namespace, mcpKey.Name
	a.Spec.Protocol = protocol
	return a
}

// drainingPlatform adds a draining list to platformtest.Platform.
type drainingPlatform struct {
	*platformtest.Platform
	draining platform.EndpointSet
}

func (p *drainingPlatform) DrainingEndpoints(k platform.AgentKey) ([]platform.Endpoint, <-chan struct{}) {
	return p.draining.Get(k)
}

// mcpReplica is an in-process go-sdk MCP server behind a real sidecar, on
// real sockets.
type mcpReplica struct {
	name     string
	server   *mcp.Server
	ep       platform.Endpoint
	upstream string // the server's own URL, for a baseline without Flint
	calls    atomic.Int64
}

type whoamiOut struct {
	Replica string `json:"replica"`
	Session string `json:"session"`
}

type countdownIn struct {
	From       int `json:"from"`
	IntervalMs int `json:"intervalMs"`
}

// startMCPReplica starts a replica; stateless serves the 2026-07-28 era
// (no sessions), otherwise the session era.
func startMCPReplica(t *testing.T, name string, stateless bool) *mcpReplica {
	t.Helper()
	return startCappedMCPReplica(t, name, stateless, 0)
}

// startCappedMCPReplica starts a replica whose sidecar takes at most
// concurrency requests at once (0: unlimited).
func startCappedMCPReplica(t *testing.T, name string, stateless bool, concurrency int) *mcpReplica {
	t.Helper()
	r := &mcpReplica{name: name, server: mcp.NewServer(&mcp.Implementation{Name: name, Version: "1"}, nil)}
	mcp.AddTool(r.server, &mcp.Tool{Name: "whoami"}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, whoamiOut, error) {
		r.calls.Add(1)
		return nil, whoamiOut{Replica: name, Session: req.Session.ID()}, nil
	})
	mcp.AddTool(r.server, &mcp.Tool{Name: "countdown"}, func(ctx context.Context, req *mcp.CallToolRequest, in countdownIn) (*mcp.CallToolResult, whoamiOut, error) {
		for i := range in.From {
			if tok := req.Params.GetProgressToken(); tok != nil {
				_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i), Total: float64(in.From)})
			}
			select {
			case <-time.After(time.Duration(in.IntervalMs) * time.Millisecond):
			case <-ctx.Done():
				return nil, whoamiOut{}, ctx.Err()
			}
		}
		return nil, whoamiOut{Replica: name}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return r.server },
		&mcp.StreamableHTTPOptions{DisableLocalhostProtection: true, Stateless: stateless})
	up := httptest.NewServer(h)
	t.Cleanup(up.Close)
	r.upstream = up.URL
	r.ep = startSidecar(t, up, concurrency, name)
	// Runs before the sidecar's drain, which would wait for session streams.
	t.Cleanup(r.closeSessions)
	return r
}

// closeSessions ends every session the replica holds, as a process exit would.
func (r *mcpReplica) closeSessions() {
	var all []*mcp.ServerSession
	for s := range r.server.Sessions() {
		all = append(all, s)
	}
	for _, s := range all {
		_ = s.Close()
	}
}

// mcpURL is the agent's MCP endpoint through the gateway at base.
func mcpURL(base string) string {
	return base + RoutePrefix + mcpKey.Namespace + "/" + mcpKey.Name + "/mcp"
}

// connectMCP opens a session with the go-sdk client, closed at cleanup.
func connectMCP(t *testing.T, url string, hc *http.Client, opts *mcp.ClientOptions) (*mcp.ClientSession, error) {
	t.Helper()
	return connect(t, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc, MaxRetries: 2}, opts)
}

// mustConnectMCPWithoutStream opens a session whose client does not open
// the standalone stream (GET), so the test can open it itself.
func mustConnectMCPWithoutStream(t *testing.T, url string) *mcp.ClientSession {
	t.Helper()
	cs, err := connect(t, &mcp.StreamableClientTransport{Endpoint: url, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func connect(t *testing.T, tr *mcp.StreamableClientTransport, opts *mcp.ClientOptions) (*mcp.ClientSession, error) {
	t.Helper()
	if tr.HTTPClient == nil {
		tr.HTTPClient = &http.Client{Transport: &http.Transport{}}
		t.Cleanup(tr.HTTPClient.CloseIdleConnections)
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "flint-test", Version: "1"}, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, tr, nil)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs, nil
}

func mustConnectMCP(t *testing.T, url string) *mcp.ClientSession {
	t.Helper()
	cs, err := connectMCP(t, url, nil, nil)
	if err != nil {
		t.Fatalf("connect through the gateway: %v", err)
	}
	return cs
}

// whoami calls the whoami tool and returns who answered.
func whoami(t *testing.T, cs *mcp.ClientSession) (whoamiOut, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		return whoamiOut{}, err
	}
	m, _ := res.StructuredContent.(map[string]any)
	replica, _ := m["replica"].(string)
	sess, _ := m["session"].(string)
	if replica == "" {
		return whoamiOut{}, fmt.Errorf("whoami answered %+v", res.StructuredContent)
	}
	return whoamiOut{Replica: replica, Session: sess}, nil
}

// writeSessionKey writes a session key file and returns its path.
func writeSessionKey(t *testing.T, secret string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "session-key")
	if err := os.WriteFile(f, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func routeOf(ep platform.Endpoint, upstream string) session.Route {
	return session.Route{Addr: ep.Addr, Replica: ep.Replica, UpstreamID: upstream}
}
