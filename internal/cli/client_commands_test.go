package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flint-dev/flint/internal/gateway"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
	"github.com/flint-dev/flint/internal/testutil"
	"github.com/flint-dev/flint/internal/wire"
)

var echoKey = platform.AgentKey{Namespace: "default", Name: "echo"}

// echoAgent answers with what it received, and streams /sse: one event,
// then (when release is given) a second once the test has seen the first.
func echoAgent(t *testing.T, release <-chan struct{}) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sse" {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: one\n\n")
			w.(http.Flusher).Flush()
			if release != nil {
				<-release
			}
			fmt.Fprint(w, "data: two\n\n")
			return
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s %s", r.Method, r.URL.RequestURI(), r.Header.Get("Content-Type"), body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

type fakeDecisions []wire.Decision

func (f fakeDecisions) Decisions(platform.AgentKey) []wire.Decision { return f }

type testGateway struct {
	url      string
	platform *platformtest.Platform
	replica  platform.Endpoint
}

// startTestGateway runs a gateway in front of one echo agent. With ready,
// its replica is ready at once; otherwise it turns ready readyAfter a poke.
func startTestGateway(t *testing.T, ready bool, readyAfter time.Duration, release <-chan struct{}) *testGateway {
	t.Helper()
	agent := echoAgent(t, release)
	ep := platformtest.StartSidecar(t, agent.Listener.Addr().String(), 0, "echo-0")
	p := platformtest.New(platformtest.Agent("default", "echo", 0))
	if ready {
		p.SetReady(echoKey, ep)
	}
	var once sync.Once
	poke := pokeFunc(func(k platform.AgentKey) {
		once.Do(func() { time.AfterFunc(readyAfter, func() { p.SetReady(k, ep) }) })
	})
	gw, err := gateway.New(gateway.DefaultConfig(), p, poke, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	gw.SetDecisionSource(fakeDecisions{
		{Time: now.Add(-time.Minute), Current: 0, Desired: 1, Reason: wire.ReasonPoke, Demand: 1},
		{Time: now, Current: 1, Desired: 1, Ready: 1, Reason: wire.ReasonStable, Demand: 0.4, StableDemand: 0.3},
	})
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(func() {
		srv.Close()
		gw.Close()
	})
	return &testGateway{url: srv.URL, platform: p, replica: ep}
}

type pokeFunc func(platform.AgentKey)

func (f pokeFunc) Poke(k platform.AgentKey) { f(k) }

func run(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestAgentsListsAgents(t *testing.T) {
	gw := startTestGateway(t, true, 0, nil)
	if code, _, errOut := run("invoke", "echo", "-gateway", gw.url); code != 0 {
		t.Fatalf("invoke: %d %s", code, errOut)
	}
	code, out, errOut := run("agents", "-gateway", gw.url)
	if code != 0 {
		t.Fatalf("agents: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAMESPACE/NAME") || !strings.Contains(lines[0], "IN-FLIGHT/HELD") {
		t.Fatalf("table:\n%s", out)
	}
	fields := strings.Fields(lines[1])
	// default/echo http 1 1 0/0 0s ago
	if fields[0] != "default/echo" || fields[1] != "http" || fields[2] != "1" || fields[3] != "1" || fields[4] != "0/0" || !strings.HasSuffix(lines[1], "ago") {
		t.Fatalf("row: %q", lines[1])
	}

	code, out, _ = run("agents", "-gateway", gw.url, "-o", "json")
	var agents []gateway.AgentSummary
	if code != 0 || json.Unmarshal([]byte(out), &agents) != nil || len(agents) != 1 || agents[0].RequestsTotal != 1 {
		t.Fatalf("agents -o json: %d %s", code, out)
	}
}

func TestInvokeShowsColdStartProgress(t *testing.T) {
	gw := startTestGateway(t, false, 600*time.Millisecond, nil)
	code, out, errOut := run("invoke", "echo", "-gateway", gw.url, "-d", `{"q":"hi"}`, "-path", "/ask?x=1")
	if code != 0 {
		t.Fatalf("invoke: %d %s", code, errOut)
	}
	if want := `POST /ask?x=1 application/json {"q":"hi"}`; out != want {
		t.Fatalf("stdout = %q, want %q", out, want)
	}
	if !strings.Contains(errOut, "waiting for default/echo to start…") || !strings.Contains(errOut, "default/echo started in") {
		t.Fatalf("stderr lacks the cold-start progress:\n%s", errOut)
	}
}

func TestInvokeWarmPrintsNothingOnStderr(t *testing.T) {
	gw := startTestGateway(t, true, 0, nil)
	code, out, errOut := run("invoke", "-X", "put", "-H", "Content-Type: text/x-test", "-d", "body", "default/echo", "-gateway", gw.url)
	if code != 0 || out != "PUT / text/x-test body" || errOut != "" {
		t.Fatalf("invoke: %d stdout %q stderr %q", code, out, errOut)
	}
}

func TestInvokeBodyFromFileWithLongFlags(t *testing.T) {
	gw := startTestGateway(t, true, 0, nil)
	file := filepath.Join(t.TempDir(), "req.json")
	if err := os.WriteFile(file, []byte(`{"from":"file"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run("invoke", "echo", "--gateway", gw.url, "--data", "@"+file, "--path", "/f")
	if code != 0 || out != `POST /f application/json {"from":"file"}` {
		t.Fatalf("invoke: %d stdout %q stderr %q", code, out, errOut)
	}
	code, out, _ = run("invoke", "echo", "-gateway", gw.url, "-i")
	if code != 0 || !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") || !strings.Contains(out, "\r\n\r\nGET / ") {
		t.Fatalf("invoke -i: %d %q", code, out)
	}
}

// syncWriter is an io.Writer the test can read while invoke writes.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	saw chan struct{}
	on  string
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.saw != nil && strings.Contains(w.buf.String(), w.on) {
		close(w.saw)
		w.saw = nil
	}
	return len(p), nil
}

// TestInvokeStreams: the first event must reach stdout while the agent is
// still holding the stream open; a buffering invoke would deadlock here.
func TestInvokeStreams(t *testing.T) {
	release := make(chan struct{})
	gw := startTestGateway(t, true, 0, release)
	out := &syncWriter{saw: release, on: "data: one"}
	var errOut bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- Main([]string{"invoke", "echo", "-gateway", gw.url, "-path", "/sse"}, out, &errOut) }()
	select {
	case code := <-done:
		if code != 0 || out.buf.String() != "data: one\n\ndata: two\n\n" {
			t.Fatalf("invoke: %d %q %s", code, out.buf.String(), errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("invoke did not stream the first event before the stream ended")
	}
}

func TestInvokeErrors(t *testing.T) {
	gw := startTestGateway(t, true, 0, nil)
	code, out, errOut := run("invoke", "nope", "-gateway", gw.url)
	if code != 1 || !strings.Contains(out, `"reason":"AgentNotFound"`) || !strings.Contains(errOut, "404 Not Found AgentNotFound") {
		t.Fatalf("unknown agent: %d stdout %q stderr %q", code, out, errOut)
	}
	code, _, errOut = run("invoke", "-gateway", "http://"+testutil.FreeAddr(t), "echo")
	if code != 1 || !strings.Contains(errOut, "cannot reach the gateway") {
		t.Fatalf("no gateway: %d %q", code, errOut)
	}
	if code, _, errOut = run("invoke", "-gateway", gw.url); code != 2 || !strings.Contains(errOut, "exactly one agent name") {
		t.Fatalf("no name: %d %q", code, errOut)
	}
	if code, _, errOut = run("invoke", "-gateway", gw.url, "echo", "-d", "@/does/not/exist"); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Fatalf("missing body file: %d %q", code, errOut)
	}
}

func TestDescribeShowsSpecStatusAndDecisions(t *testing.T) {
	gw := startTestGateway(t, true, 0, nil)
	code, out, errOut := run("describe", "default/echo", "-gateway", gw.url)
	if code != 0 {
		t.Fatalf("describe: %d %s", code, errOut)
	}
	for _, want := range []string{
		"Name:", "echo", "Protocol:", "http", "Scaling:", "0–10 replicas", "to zero after 30s idle",
		"1 asked, 1 ready, 1 desired", "echo-0", gw.replica.Addr,
		"Recent scale decisions", "0 → 1", "poke", "stable",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = run("describe", "echo", "-o", "json", "-gateway", gw.url)
	var d gateway.AgentDetail
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil || len(d.Decisions) != 2 || d.Decisions[0].Reason != "poke" {
		t.Fatalf("describe -o json: %d %s", code, out)
	}
	code, _, errOut = run("describe", "-n", "other", "echo", "-gateway", gw.url)
	if code != 1 || !strings.Contains(errOut, "no agent other/echo") {
		t.Fatalf("unknown agent: %d %q", code, errOut)
	}
}

func TestGatewayFromEnvironment(t *testing.T) {
	gw := startTestGateway(t, true, 0, nil)
	t.Setenv("FLINT_GATEWAY", gw.url)
	if code, out, errOut := run("agents"); code != 0 || !strings.Contains(out, "default/echo") {
		t.Fatalf("agents with FLINT_GATEWAY: %d %s %s", code, out, errOut)
	}
}

func TestCredentials(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keys, []byte("k-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := echoAgent(t, nil)
	p := platformtest.New(platformtest.Agent("default", "echo", 0))
	p.SetReady(echoKey, platformtest.StartSidecar(t, agent.Listener.Addr().String(), 0, "echo-0"))
	cfg := gateway.DefaultConfig()
	cfg.Auth.APIKeysFile = keys
	gw, err := gateway.New(cfg, p, nil, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(func() { srv.Close(); gw.Close() })

	if code, _, errOut := run("agents", "-gateway", srv.URL); code != 1 || !strings.Contains(errOut, "pass -token or set FLINT_TOKEN") {
		t.Fatalf("agents without a token: %d %q", code, errOut)
	}
	if code, out, errOut := run("invoke", "echo", "-gateway", srv.URL, "-token", "k-1"); code != 0 || out != "GET /  " {
		t.Fatalf("invoke -token: %d %q %q", code, out, errOut)
	}
	t.Setenv("FLINT_TOKEN", "k-1")
	if code, out, errOut := run("agents", "-gateway", srv.URL); code != 0 || !strings.Contains(out, "default/echo") {
		t.Fatalf("agents with FLINT_TOKEN: %d %q %q", code, out, errOut)
	}
	var help bytes.Buffer
	Main([]string{"agents", "-h"}, &help, &help)
	if strings.Contains(help.String(), "k-1") {
		t.Fatal("-h printed the token from FLINT_TOKEN")
	}
}

func TestParseAgentName(t *testing.T) {
	for in, want := range map[string]string{"echo": "ns/echo", "a/b": "a/b"} {
		k, err := parseAgentName(in, "ns")
		if err != nil || k.String() != want {
			t.Errorf("%q: %v %v", in, k, err)
		}
	}
	for _, bad := range []string{"", "/x", "a/", "a/b/c"} {
		if _, err := parseAgentName(bad, "ns"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
