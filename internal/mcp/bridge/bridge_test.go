package bridge

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/flint-dev/flint/internal/testutil"
)

// testBridge is a bridge running in this process over fake children.
type testBridge struct {
	*Bridge
	url      string // MCP endpoint
	base     string
	childLog string
	stderr   *testutil.SyncBuffer
	stop     func() time.Duration // cancels Run, as SIGTERM does, and says how long Run took to return
}

// startBridge runs a bridge over the fake child; childEnv configures it.
func startBridge(t *testing.T, mutate func(*Config), childEnv ...string) *testBridge {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.ChildStopWait = 300 * time.Millisecond
	cfg.GracePeriod = 5 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	childLog := filepath.Join(t.TempDir(), "child.log")
	// GORACE: under the race detector a process sleeps 1s on exit by
	// default, which would look like a child ignoring its closed stdin.
	argv := append([]string{"/usr/bin/env", "GORACE=atexit_sleep_ms=0", "FAKE_CHILD_LOG=" + childLog}, childEnv...)
	argv = append(argv, os.Args[0])
	stderr := &testutil.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := New(cfg, argv, log, stderr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var took time.Duration
	var once sync.Once
	stop := func() time.Duration {
		once.Do(func() {
			start := time.Now()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			took = time.Since(start)
		})
		return took
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("bridge output:\n%s", stderr.String())
		}
	})
	base := "http://" + b.Addr()
	return &testBridge{Bridge: b, url: base + cfg.Path, base: base, childLog: childLog, stderr: stderr, stop: stop}
}

// waitReady waits for /healthz to answer 200.
func (tb *testBridge) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get(tb.base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("bridge not ready within 10s:\n%s", tb.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// connect opens a session with the go-sdk client (its default protocol
// version, so the stateless-era probe and the fallback are exercised).
func (tb *testBridge) connect(t *testing.T, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, opts).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: tb.url, HTTPClient: hc, MaxRetries: 1}, nil)
	if err != nil {
		t.Fatalf("connect to the bridge: %v\n%s", err, tb.stderr.String())
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func callInt(t *testing.T, cs *mcp.ClientSession, tool, field string, args any) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return 0, err
	}
	m, _ := res.StructuredContent.(map[string]any)
	f, _ := m[field].(float64)
	return int(f), nil
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestBridgeGivesEachSessionItsOwnChild(t *testing.T) {
	tb := startBridge(t, nil)
	tb.waitReady(t)
	a, b := tb.connect(t, nil), tb.connect(t, nil)
	if v := a.InitializeResult().ProtocolVersion; v != "2025-11-25" {
		t.Errorf("negotiated %s; a stdio bridge serves the session era", v)
	}
	pidA, err := callInt(t, a, "whoami", "pid", nil)
	if err != nil {
		t.Fatal(err)
	}
	pidB, _ := callInt(t, b, "whoami", "pid", nil)
	if pidA == pidB || pidA == 0 {
		t.Fatalf("sessions share child %d/%d", pidA, pidB)
	}
	for i := range 20 {
		if got, err := callInt(t, a, "whoami", "pid", nil); err != nil || got != pidA {
			t.Fatalf("call %d: pid %d, %v; want %d", i, got, err, pidA)
		}
	}
	if !strings.Contains(tb.stderr.String(), "session ") || !strings.Contains(tb.stderr.String(), "| fake child") {
		t.Errorf("children's stderr is not relayed with the session's name:\n%s", tb.stderr.String())
	}

	// Ending a session stops its child, politely: stdin closes and it exits.
	_ = a.Close()
	testutil.WaitFor(t, "child of the ended session to exit", func() bool { return !alive(pidA) })
	ev := eventsOf(readChildLog(t, tb.childLog), pidA)
	if _, ok := ev["stdin-eof"]; !ok {
		t.Errorf("child of the ended session did not see its stdin close: %v", ev)
	}
	if _, ok := ev["sigterm"]; ok {
		t.Errorf("a cooperative child got SIGTERM: %v", ev)
	}
	if _, err := callInt(t, b, "whoami", "pid", nil); err != nil {
		t.Errorf("the other session broke: %v", err)
	}
}

func TestBridgeShutdownOrderAndTiming(t *testing.T) {
	// Long enough that stopping the children in parallel and one by one
	// stay far apart even on a loaded machine (CI runs packages in
	// parallel on 2 cores): scheduling delays of a second must not fail it.
	const wait = 1500 * time.Millisecond
	const slack = 1500 * time.Millisecond
	for _, tc := range []struct {
		name string
		env  []string
		// wantTerm: the child had to be sent SIGTERM; wantKill: SIGKILL.
		wantTerm, wantKill bool
	}{
		{"exits when stdin closes", nil, false, false},
		{"needs SIGTERM", []string{"FAKE_CHILD_IGNORE_EOF=1"}, true, false},
		{"needs SIGKILL", []string{"FAKE_CHILD_IGNORE_EOF=1", "FAKE_CHILD_IGNORE_TERM=1"}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := startBridge(t, func(c *Config) {
				c.ChildStopWait, c.GracePeriod = wait, 15*time.Second
			}, tc.env...)
			tb.waitReady(t)
			// Three sessions: children stop in parallel, so three cost as much as one.
			var pids []int
			for range 3 {
				pid, err := callInt(t, tb.connect(t, nil), "whoami", "pid", nil)
				if err != nil {
					t.Fatal(err)
				}
				pids = append(pids, pid)
			}
			took := tb.stop()
			log := readChildLog(t, tb.childLog)
			for _, pid := range pids {
				if alive(pid) {
					t.Errorf("child %d outlived the bridge", pid)
				}
				ev := eventsOf(log, pid)
				eof, sawEOF := ev["stdin-eof"]
				term, sawTerm := ev["sigterm"]
				if !sawEOF {
					t.Errorf("child %d: stdin was not closed first: %v", pid, ev)
					continue
				}
				if sawTerm != tc.wantTerm {
					t.Errorf("child %d: SIGTERM sent %v, want %v", pid, sawTerm, tc.wantTerm)
				}
				if sawTerm {
					// The child logs stdin-eof once its server has wound down,
					// a little after the bridge closed the pipe.
					if gap := term.Sub(eof); gap < wait-150*time.Millisecond || gap > wait+slack {
						t.Errorf("child %d: SIGTERM %s after stdin closed, want about %s", pid, gap, wait)
					}
				}
				if _, exited := ev["exit"]; exited == tc.wantKill {
					t.Errorf("child %d: exited by itself %v, want %v (SIGKILL)", pid, exited, !tc.wantKill)
				}
			}
			// In parallel the children cost the waits one of them needs;
			// one by one, three would cost three times that.
			waits := time.Duration(0)
			if tc.wantTerm {
				waits++
			}
			if tc.wantKill {
				waits++
			}
			budget := waits*wait + slack
			t.Logf("bridge shutdown with 3 children that %s: %s (child-stop-wait %s)", tc.name, took.Round(time.Millisecond), wait)
			if took > budget {
				t.Errorf("shutdown took %s, want under %s: children must stop in parallel", took, budget)
			}
			if tc.wantKill && took < 2*wait-50*time.Millisecond {
				t.Errorf("shutdown took %s: SIGKILL came before two waits of %s", took, wait)
			}
			if !strings.Contains(tb.stderr.String(), "stdio bridge stopped") {
				t.Error("the bridge's last log line is missing")
			}
		})
	}
}

// SIGTERM under load: every call a child began is answered to its client;
// calls refused at the closed listener never reached a child.
func TestBridgeSIGTERMUnderLoadLosesNoCall(t *testing.T) {
	tb := startBridge(t, nil)
	tb.waitReady(t)
	var mu sync.Mutex
	answered := map[int]bool{}
	var wg sync.WaitGroup
	stopLoad := make(chan struct{})
	for s := range 4 {
		cs := tb.connect(t, nil)
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				id := s*10000 + i
				got, err := callInt(t, cs, "slow", "id", map[string]int{"id": id, "ms": 150})
				if err != nil {
					return // refused once the bridge stopped accepting
				}
				mu.Lock()
				answered[got] = true
				mu.Unlock()
			}
		})
	}
	time.Sleep(400 * time.Millisecond)
	took := tb.stop()
	close(stopLoad)
	wg.Wait()

	begun := 0
	for _, e := range readChildLog(t, tb.childLog) {
		id, ok := strings.CutPrefix(e.event, "begin ")
		if !ok {
			continue
		}
		begun++
		var n int
		_ = json.Unmarshal([]byte(id), &n)
		if !answered[n] {
			t.Errorf("call %d began in a child but its client got no answer", n)
		}
	}
	t.Logf("%d calls began, %d answered; shutdown under load took %s", begun, len(answered), took.Round(time.Millisecond))
	if begun < 8 {
		t.Errorf("only %d calls began: the load did not run", begun)
	}
}

func TestBridgeReadiness(t *testing.T) {
	t.Run("ready once a child answers initialize", func(t *testing.T) {
		tb := startBridge(t, nil)
		tb.waitReady(t)
	})
	t.Run("never ready when the command is not an MCP server", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Listen, cfg.StartTimeout, cfg.ChildStopWait = "127.0.0.1:0", 300*time.Millisecond, 100*time.Millisecond
		stderr := &testutil.SyncBuffer{}
		b, err := New(cfg, []string{"/bin/sleep", "30"}, slog.New(slog.NewTextHandler(stderr, nil)), stderr)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx) }()
		defer func() { cancel(); <-done }()
		time.Sleep(time.Second)
		res, err := http.Get("http://" + b.Addr() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("/healthz %d for a command that never answers initialize", res.StatusCode)
		}
		if !strings.Contains(stderr.String(), "readiness probe failed") {
			t.Errorf("no log of the failed probe:\n%s", stderr.String())
		}
	})
	t.Run("not ready while shutting down", func(t *testing.T) {
		tb := startBridge(t, nil)
		tb.waitReady(t)
		tb.stopping.Store(true)
		res, err := http.Get(tb.base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("/healthz %d while stopping", res.StatusCode)
		}
		tb.stopping.Store(false)
	})
}
