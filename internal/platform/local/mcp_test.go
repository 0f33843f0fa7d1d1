package local

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/gateway"
	flintmcp "github.com/flint-dev/flint/internal/mcp"
)

// buildMCPExample builds examples/mcp-go.
func buildMCPExample(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mcp-go")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../examples/mcp-go").CombinedOutput(); err != nil {
		t.Fatalf("build examples/mcp-go: %v\n%s", err, out)
	}
	return bin
}

// Scaling an MCP agent down: the stopping replica serves the sessions it
// holds through the session drain, takes no new session, then its sessions
// get 404 and their clients move on; its server exits 0.
func TestMCPScaleDownRespectsSessions(t *testing.T) {
	const sessionDrain = 1500 * time.Millisecond
	rt, key, out := newRuntime(t, []string{buildMCPExample(t)}, func(a *v1alpha1.Agent) {
		a.Name = "tools"
		a.Spec.Protocol = v1alpha1.ProtocolMCP
	}, func(c *Config) { c.SessionDrain = sessionDrain })
	gw, err := gateway.New(gateway.DefaultConfig(), rt, nil, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: gw}
	base := serveOnLoopback(t, srv)
	t.Cleanup(gw.Close)
	url := base + gateway.RoutePrefix + "default/tools/mcp"

	if err := rt.SetScale(context.Background(), key, 2); err != nil {
		t.Fatal(err)
	}
	waitReady(t, rt, key, 2)
	// The runtime stops the newest replica first: tools-2.
	onVictim := sessionOnReplica(t, url, "tools-2")
	runner := rt.agents[key]
	runner.mu.Lock()
	victim := runner.replicas[1]
	runner.mu.Unlock()

	stopStart := time.Now()
	stoppedAfter := make(chan time.Duration, 1)
	go func() { <-victim.superDone; stoppedAfter <- time.Since(stopStart) }()
	if err := rt.SetScale(context.Background(), key, 1); err != nil {
		t.Fatal(err)
	}
	if eps, _ := rt.DrainingEndpoints(key); len(eps) != 1 || eps[0].Replica != "tools-2" {
		t.Fatalf("draining endpoints %+v, want tools-2", eps)
	}
	for time.Since(stopStart) < sessionDrain-500*time.Millisecond {
		if who, err := replicaOf(onVictim); err != nil || who != "tools-2" {
			t.Fatalf("during the session drain the victim's session got %q, %v", who, err)
		}
		cs := connectOrFail(t, url)
		if who, err := replicaOf(cs); err != nil || who != "tools-1" {
			t.Fatalf("a new session during the drain went to %q (%v); want tools-1", who, err)
		}
	}

	// After the drain its sessions are gone and the client starts afresh.
	for time.Since(stopStart) < sessionDrain+500*time.Millisecond {
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := replicaOf(onVictim); !sessionMissing(err) {
		t.Errorf("the victim's session after the drain: %v, want ErrSessionMissing", err)
	}
	if who, err := replicaOf(connectOrFail(t, url)); err != nil || who != "tools-1" {
		t.Errorf("re-initialized on %q, %v", who, err)
	}
	t.Logf("replica with an open session stopped %s after scale-down (session drain %s)", (<-stoppedAfter).Round(time.Millisecond), sessionDrain)
	if code := victim.proc.exitCode(); code != "0" {
		t.Errorf("the MCP server exited %s, want 0\n%s", code, out.String())
	}
}

func TestStdioAgentsRunBehindTheBridge(t *testing.T) {
	a := &v1alpha1.Agent{}
	a.Name, a.Namespace = "fs", "default"
	a.Spec.Protocol = v1alpha1.ProtocolMCP
	a.Spec.Container.Command = []string{"npx", "server"}
	a.Spec.Container.Args = []string{"/data"}
	a.Annotations = map[string]string{flintmcp.AnnotationTransport: flintmcp.TransportStdio}
	a.Default()
	cfg := DefaultConfig()
	cfg.BridgeCommand = []string{"/opt/flint", "stdio-bridge"}
	cfg.GracePeriod = 8 * time.Second
	rt, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	runner := &agentRunner{rt: rt, agent: a, stdio: true}
	want := []string{"/opt/flint", "stdio-bridge", "-grace-period", "8s", "--", "npx", "server", "/data"}
	if got := runner.argv(); !slices.Equal(got, want) {
		t.Errorf("argv %q, want %q", got, want)
	}
	sc := rt.sidecarConfig(a, 1234)
	if sc.ProbePath != "/healthz" || sc.RequestTimeout != 0 {
		t.Errorf("sidecar of a bridged agent: probe %q, request timeout %s", sc.ProbePath, sc.RequestTimeout)
	}

	a.Annotations[flintmcp.AnnotationTransport] = "stdin"
	if _, err := flintmcp.UsesStdio(a); err == nil {
		t.Error("an unknown transport was accepted")
	}
}

func serveOnLoopback(t *testing.T, srv *http.Server) string {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func connectOrFail(t *testing.T, url string) *mcp.ClientSession {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The session era: the example also speaks the stateless one, which has
	// no sessions to keep.
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc, MaxRetries: 1},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func sessionOnReplica(t *testing.T, url, replica string) *mcp.ClientSession {
	t.Helper()
	for range 50 {
		cs := connectOrFail(t, url)
		if who, err := replicaOf(cs); err == nil && who == replica {
			return cs
		}
	}
	t.Fatalf("no session landed on %s", replica)
	return nil
}

// replicaOf asks the example's whoami tool which replica serves cs.
// sessionMissing reports the client's finding that its session is gone:
// the call itself answered 404 (ErrSessionMissing), or the client's
// standalone stream, reconnecting first, got that 404 and closed the client,
// which the go-sdk reports as ErrConnectionClosed with the cause's text
// only (seen once in a loaded CI run).
func sessionMissing(err error) bool {
	return errors.Is(err, mcp.ErrSessionMissing) ||
		errors.Is(err, mcp.ErrConnectionClosed) && strings.HasSuffix(err.Error(), ": "+mcp.ErrSessionMissing.Error())
}

func replicaOf(cs *mcp.ClientSession) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		return "", err
	}
	m, _ := res.StructuredContent.(map[string]any)
	r, _ := m["replica"].(string)
	return r, nil
}
