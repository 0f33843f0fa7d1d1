package local

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/agentfile"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/testutil"
)

var echoBin string

func TestMain(m *testing.M) {
	// This binary stands in for flint's supervise-agent command, and for a
	// `flint up` that the supervisor tests SIGKILL (supervisor_test.go).
	if len(os.Args) > 1 && os.Args[1] == SuperviseCommand {
		os.Exit(Supervise(os.Args[2:]))
	}
	if os.Getenv(fakeUpEnv) != "" {
		os.Exit(fakeUp())
	}
	dir, err := os.MkdirTemp("", "flint-local-test-")
	if err != nil {
		panic(err)
	}
	echoBin = filepath.Join(dir, "echo")
	cmd := exec.Command("go", "build", "-o", echoBin, "../../../examples/echo")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build echo: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreAnyFunction("github.com/flint-dev/flint/internal/platform/local.onSpawnThread.func1.1")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// newRuntime builds a runtime for one agent running argv.
func newRuntime(t *testing.T, argv []string, mutate func(*v1alpha1.Agent), cfgMutate func(*Config)) (*Runtime, platform.AgentKey, *testutil.SyncBuffer) {
	t.Helper()
	a := &v1alpha1.Agent{}
	a.Name, a.Namespace = "echo", "default"
	a.Spec.Container.Command = argv
	a.Spec.Container.Port = 8080
	if mutate != nil {
		mutate(a)
	}
	a.Default()
	out := &testutil.SyncBuffer{}
	cfg := DefaultConfig()
	cfg.Output = out
	cfg.GracePeriod = 2 * time.Second
	cfg.Supervisor = testSupervisor(t)
	if cfgMutate != nil {
		cfgMutate(&cfg)
	}
	rt, err := New(cfg, []agentfile.Loaded{{Agent: a, File: "test.yaml", Dir: t.TempDir()}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return rt, platform.KeyOf(a), out
}

// waitReady waits until the agent has n ready endpoints, without polling:
// it waits on the change channel.
func waitReady(t *testing.T, rt *Runtime, key platform.AgentKey, n int) []platform.Endpoint {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		eps, changed := rt.ReadyEndpoints(key)
		if len(eps) == n {
			return eps
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%d ready endpoints after 20s, want %d", len(eps), n)
		}
	}
}

func pidAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func replicaPIDs(rt *Runtime, key platform.AgentKey) []int {
	a := rt.agents[key]
	a.mu.Lock()
	defer a.mu.Unlock()
	var pids []int
	for _, r := range a.replicas {
		r.mu.Lock()
		if r.proc != nil {
			pids = append(pids, r.proc.cmd.Process.Pid)
		}
		r.mu.Unlock()
	}
	return pids
}

func TestScaleUpServesAndScaleDownStopsProcesses(t *testing.T) {
	rt, key, out := newRuntime(t, []string{echoBin}, func(a *v1alpha1.Agent) { a.Spec.Concurrency = 4 }, nil)
	if err := rt.SetScale(context.Background(), key, 2); err != nil {
		t.Fatal(err)
	}
	eps := waitReady(t, rt, key, 2)
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	pids := map[string]bool{}
	for _, ep := range eps {
		if ep.AdminAddr == "" || ep.Addr == ep.AdminAddr {
			t.Fatalf("endpoint %+v: admin port must be separate", ep)
		}
		res, err := c.Get("http://" + ep.Addr + "/hi")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(body), `"/hi"`) {
			t.Fatalf("%s: %d %s", ep.Replica, res.StatusCode, body)
		}
		pids[ep.Replica] = true
	}
	if len(pids) != 2 {
		t.Fatalf("replicas %v", pids)
	}
	procs := replicaPIDs(rt, key)
	if err := rt.SetScale(context.Background(), key, 0); err != nil {
		t.Fatal(err)
	}
	if eps, _ := rt.ReadyEndpoints(key); len(eps) != 0 {
		t.Fatalf("after scale to 0: %d endpoints still ready", len(eps))
	}
	rt.agents[key].wait()
	for _, pid := range procs {
		if pidAlive(pid) {
			t.Errorf("process %d still alive after scale-down", pid)
		}
	}
	if !strings.Contains(out.String(), "echo-1 | ") || !strings.Contains(out.String(), "echo-2 | ") {
		t.Errorf("agent output is not prefixed by replica:\n%s", out.String())
	}
}

func TestScaleDownFinishesInFlightRequest(t *testing.T) {
	rt, key, _ := newRuntime(t, []string{echoBin}, nil, nil)
	if err := rt.SetScale(context.Background(), key, 1); err != nil {
		t.Fatal(err)
	}
	ep := waitReady(t, rt, key, 1)[0]
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	done := make(chan error, 1)
	go func() {
		res, err := c.Get("http://" + ep.Addr + "/slow?sleep=700ms")
		if err == nil {
			res.Body.Close()
			if res.StatusCode != 200 {
				err = fmt.Errorf("status %d", res.StatusCode)
			}
		}
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if err := rt.SetScale(context.Background(), key, 0); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("in-flight request lost on scale-down: %v", err)
	}
}

func TestCrashingProcessRestartsWithBackoff(t *testing.T) {
	rt, key, out := newRuntime(t, []string{"sh", "-c", "echo started; exit 3"}, nil, func(c *Config) {
		c.RestartBackoff = 50 * time.Millisecond
		c.MaxRestartBackoff = 400 * time.Millisecond
	})
	if err := rt.SetScale(context.Background(), key, 1); err != nil {
		t.Fatal(err)
	}
	a := rt.agents[key]
	deadline := time.Now().Add(20 * time.Second)
	for a.crashes.Load() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d restarts in 20s", a.crashes.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	before := a.crashes.Load()
	time.Sleep(time.Second)
	// With backoff capped at 400ms, one second holds at most 3 restarts;
	// without backoff it would hold hundreds.
	if n := a.crashes.Load() - before; n > 3 {
		t.Errorf("%d restarts in %s: backoff is not applied", n, time.Since(start))
	}
	if eps, _ := rt.ReadyEndpoints(key); len(eps) != 0 {
		t.Errorf("a crashing replica is published as ready: %v", eps)
	}
	if !strings.Contains(out.String(), "echo-1 | started") {
		t.Errorf("output missing prefixed lines:\n%s", out.String())
	}
}

func TestStopEscalatesToSIGKILLAfterGrace(t *testing.T) {
	// The agent ignores SIGTERM, as a misbehaving one would.
	script := `trap "" TERM; echo up; while :; do sleep 0.05; done`
	rt, key, out := newRuntime(t, []string{"sh", "-c", script}, nil, func(c *Config) { c.GracePeriod = 500 * time.Millisecond })
	if err := rt.SetScale(context.Background(), key, 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "echo-1 | up") {
		if time.Now().After(deadline) {
			t.Fatal("agent never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	pids := replicaPIDs(rt, key)
	start := time.Now()
	if err := rt.SetScale(context.Background(), key, 0); err != nil {
		t.Fatal(err)
	}
	rt.agents[key].wait()
	took := time.Since(start)
	if took < 400*time.Millisecond {
		t.Errorf("stopped after %s: SIGKILL came before the grace period", took)
	}
	for _, pid := range pids {
		if pidAlive(pid) {
			t.Errorf("process %d survived SIGKILL", pid)
		}
	}
}

func TestUnknownAgentAndBadScale(t *testing.T) {
	rt, key, _ := newRuntime(t, []string{echoBin}, nil, nil)
	if err := rt.SetScale(context.Background(), platform.AgentKey{Namespace: "x", Name: "y"}, 1); err == nil {
		t.Error("scaling an unknown agent succeeded")
	}
	if err := rt.SetScale(context.Background(), key, -1); err == nil {
		t.Error("negative scale accepted")
	}
	if _, ok := rt.Agent(key); !ok {
		t.Error("agent not found")
	}
}
