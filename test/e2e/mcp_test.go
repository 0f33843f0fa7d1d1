package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/flint-dev/flint/internal/testenv"
)

// exampleBin builds an example once per run, next to the flint binary.
var (
	examplesOnce sync.Once
	examplesErr  error
)

func exampleBin(t *testing.T, name string) string {
	t.Helper()
	examplesOnce.Do(func() {
		for _, ex := range []string{"mcp-go", "mcp-stdio", "a2a"} {
			if examplesErr = testenv.Build(filepath.Join(filepath.Dir(flintBin), ex), "./examples/"+ex); examplesErr != nil {
				return
			}
		}
	})
	if examplesErr != nil {
		t.Fatal(examplesErr)
	}
	return filepath.Join(filepath.Dir(flintBin), name)
}

func mcpAgentYAML(name, bin, protocol, extra string) string {
	return fmt.Sprintf(`apiVersion: flint.dev/v1alpha1
kind: Agent
metadata:
  name: %s
  namespace: default
%s
spec:
  protocol: %s
  container:
    command: [%q]
    port: 8080
  concurrency: 100
`, name, extra, protocol, bin)
}

func connectMCP(t *testing.T, url, version string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var so *mcp.ClientSessionOptions
	if version != "" {
		so = &mcp.ClientSessionOptions{ProtocolVersion: version}
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, opts).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc, MaxRetries: 1}, so)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func callTool(t *testing.T, cs *mcp.ClientSession, params *mcp.CallToolParams) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, params)
	if err != nil {
		t.Fatalf("%s: %v", params.Name, err)
	}
	if res.IsError {
		t.Fatalf("%s failed: %+v", params.Name, res.Content)
	}
	m, _ := res.StructuredContent.(map[string]any)
	return m
}

// The Go SDK example behind `flint up`: a session from zero, calls held on
// its replica, progress streamed, and on SIGTERM the server exits 0.
func TestUpMCPGoExample(t *testing.T) {
	file := writeAgents(t, mcpAgentYAML("mcp-go", exampleBin(t, "mcp-go"), "mcp", ""))
	base, up := flintUp(t, file, "-sse-keepalive", "1s")
	url := base + "/v1/agents/default/mcp-go/mcp"

	var progress atomic.Int32
	cs := connectMCP(t, url, "2025-11-25", &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) { progress.Add(1) },
	})
	if len(cs.ID()) < 60 {
		t.Errorf("session id %q is not a gateway token", cs.ID())
	}
	first := callTool(t, cs, &mcp.CallToolParams{Name: "whoami"})
	for range 20 {
		if got := callTool(t, cs, &mcp.CallToolParams{Name: "whoami"}); got["replica"] != first["replica"] || got["session"] != first["session"] {
			t.Fatalf("session moved: %v then %v", first, got)
		}
	}
	params := &mcp.CallToolParams{Name: "countdown", Arguments: map[string]int{"from": 4, "intervalMs": 50}}
	params.SetProgressToken("e2e")
	if got := callTool(t, cs, params); got["message"] != "liftoff" || progress.Load() != 4 {
		t.Errorf("countdown: %v with %d progress notifications, want liftoff and 4", got, progress.Load())
	}

	// The stateless era works too: no session, any replica.
	modern := connectMCP(t, url, "", nil)
	if v := modern.InitializeResult().ProtocolVersion; v < "2026-07-28" {
		t.Errorf("default client negotiated %s, want the stateless era", v)
	}
	if got := callTool(t, modern, &mcp.CallToolParams{Name: "greet", Arguments: map[string]string{"name": "e2e"}}); got["greeting"] != "Hello, e2e!" {
		t.Errorf("greet: %v", got)
	}

	start := time.Now()
	up.signal(syscall.SIGTERM)
	if code := up.wait(t, 20*time.Second); code != 0 {
		t.Errorf("flint up exited %d", code)
	}
	t.Logf("flint up with an open MCP session stopped in %s", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(up.out.String(), `replica=mcp-go-1 code=0`) {
		t.Errorf("the MCP server did not exit 0:\n%s", up.out.String())
	}
}

// A stdio server declared with the annotation runs behind the bridge: one
// child per session, stopped in order when flint up stops.
func TestUpStdioMCPServerRunsBehindTheBridge(t *testing.T) {
	file := writeAgents(t, mcpAgentYAML("fs", exampleBin(t, "mcp-stdio"), "mcp",
		"  annotations: {flint.dev/mcp-transport: stdio}"))
	base, up := flintUp(t, file)
	url := base + "/v1/agents/default/fs/mcp"

	a, b := connectMCP(t, url, "", nil), connectMCP(t, url, "", nil)
	if v := a.InitializeResult().ProtocolVersion; v != "2025-11-25" {
		t.Errorf("negotiated %s through the bridge, want 2025-11-25", v)
	}
	pidA := callTool(t, a, &mcp.CallToolParams{Name: "whoami"})["pid"]
	pidB := callTool(t, b, &mcp.CallToolParams{Name: "whoami"})["pid"]
	if pidA == nil || pidA == pidB {
		t.Errorf("sessions share a child: %v %v", pidA, pidB)
	}
	if got := callTool(t, a, &mcp.CallToolParams{Name: "greet", Arguments: map[string]string{"name": "stdio"}}); got["greeting"] != "Hello, stdio!" {
		t.Errorf("greet: %v", got)
	}

	up.signal(syscall.SIGTERM)
	if code := up.wait(t, 20*time.Second); code != 0 {
		t.Errorf("flint up exited %d", code)
	}
	out := up.out.String()
	if strings.Count(out, `child="exit 0"`) < 2 || !strings.Contains(out, "stdio bridge stopped") || !strings.Contains(out, "replica=fs-1 code=0") {
		t.Errorf("children or bridge did not stop cleanly:\n%s", out)
	}
}

// The A2A example's card names the gateway, not the replica.
func TestUpA2AExampleCard(t *testing.T) {
	file := writeAgents(t, mcpAgentYAML("a2a", exampleBin(t, "a2a"), "a2a", ""))
	base, _ := flintUp(t, file)
	res, body := get(t, newClient(t), base+"/v1/agents/default/a2a/.well-known/agent-card.json")
	var card struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal([]byte(body), &card); err != nil || res.StatusCode != 200 {
		t.Fatalf("card: %d %s", res.StatusCode, body)
	}
	if card.URL != base+"/v1/agents/default/a2a/" {
		t.Errorf("card url %q, want the gateway's %q", card.URL, base+"/v1/agents/default/a2a/")
	}
}
