package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/agentfile"
	"github.com/flint-dev/flint/internal/gateway"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/local"
)

// replicaPID asks the echo agent which process answered.
func replicaPID(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		PID int `json:"pid"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || body.PID == 0 {
		t.Fatalf("no pid in the echo answer: %v", err)
	}
	return body.PID
}

// TestFaultAgentSIGTERMUnderLoad: an agent process told to stop finishes
// what it has, refuses new connections, and the gateway retries those on
// the other replica: no request fails.
func TestFaultAgentSIGTERMUnderLoad(t *testing.T) {
	file := writeAgents(t, echoAgent("echo", "  concurrency: 20\n  scaling: {minReplicas: 2}"))
	base, _ := flintUp(t, file)
	c := newClient(t)
	url := base + "/v1/agents/default/echo/work?sleep=20ms"
	waitReplicas(t, c, base, "echo", 2)

	stop := make(chan struct{})
	ok, failed, errs, wg := load(c, url, 12, stop)
	time.Sleep(500 * time.Millisecond)
	pid := replicaPID(t, c, url)
	syscall.Kill(pid, syscall.SIGTERM)
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	assertNoFailures(t, ok, failed, errs, "an agent process's SIGTERM")
}

// TestFaultAgentSIGKILLUnderLoad: a killed agent loses only the requests it
// was serving at that instant (it saw them; they cannot be replayed
// safely); new requests go to the other replica and the killed one is
// restarted.
func TestFaultAgentSIGKILLUnderLoad(t *testing.T) {
	const workers = 8
	file := writeAgents(t, echoAgent("echo", "  concurrency: 20\n  scaling: {minReplicas: 2}"))
	base, _ := flintUp(t, file, "-restart-backoff", "100ms")
	c := newClient(t)
	url := base + "/v1/agents/default/echo/work?sleep=20ms"
	waitReplicas(t, c, base, "echo", 2)

	stop := make(chan struct{})
	ok, failed, _, wg := load(c, url, workers, stop)
	time.Sleep(500 * time.Millisecond)
	pid := replicaPID(t, c, url)
	syscall.Kill(pid, syscall.SIGKILL)
	time.Sleep(time.Second)
	failedAtKill := failed.Load()
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	if failedAtKill > workers {
		t.Errorf("%d requests failed: more than were in flight on the killed replica (at most %d)", failedAtKill, workers)
	}
	if failed.Load() != failedAtKill {
		t.Errorf("requests kept failing after the kill: %d then %d", failedAtKill, failed.Load())
	}
	waitReplicas(t, c, base, "echo", 2)
	t.Logf("SIGKILL under load: %d ok, %d failed (in flight on the killed process)", ok.Load(), failed.Load())
}

// TestFaultScaleFlappingUnderLoad scales 10→1→10 three times under steady
// load: every stopped replica drains, nothing fails.
func TestFaultScaleFlappingUnderLoad(t *testing.T) {
	loaded, err := agentfile.Load(writeAgents(t, echoAgent("echo", "  concurrency: 50\n  scaling: {maxReplicas: 10}")))
	if err != nil {
		t.Fatal(err)
	}
	cfg := local.DefaultConfig()
	cfg.Output = io.Discard
	rt, err := local.New(cfg, loaded, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Shutdown(context.Background())
	gw, err := gateway.New(gateway.DefaultConfig(), rt, nil, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	srv := httptest.NewServer(gw)
	defer srv.Close()
	key := platform.AgentKey{Namespace: "default", Name: "echo"}
	rt.SetScale(context.Background(), key, 10)

	c := newClient(t)
	stop := make(chan struct{})
	ok, failed, errs, wg := load(c, srv.URL+"/v1/agents/default/echo/work?sleep=10ms", 16, stop)
	for range 3 {
		time.Sleep(700 * time.Millisecond)
		rt.SetScale(context.Background(), key, 1)
		time.Sleep(700 * time.Millisecond)
		rt.SetScale(context.Background(), key, 10)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	assertNoFailures(t, ok, failed, errs, "scaling 10→1→10 three times")
}

// TestFaultAgentNeverReady: an agent whose readiness never passes holds
// requests until timeouts.coldStart, then 504 JSON names it.
func TestFaultAgentNeverReady(t *testing.T) {
	yaml := strings.Replace(echoAgent("stuck", "  timeouts: {coldStart: 2s}"), "path: /healthz", `path: "/not-ready?status=503"`, 1)
	base, _ := flintUp(t, writeAgents(t, yaml))
	start := time.Now()
	res, body := get(t, newClient(t), base+"/v1/agents/default/stuck/")
	if res.StatusCode != 504 || !strings.Contains(body, `"ColdStartTimeout"`) || !strings.Contains(body, "default/stuck") {
		t.Fatalf("got %d %s", res.StatusCode, body)
	}
	if el := time.Since(start); el < 2*time.Second || el > 10*time.Second {
		t.Errorf("answered after %s, want about the 2s cold-start timeout", el)
	}
}

// TestFaultAgentCrashesAtStart: a crash-looping agent is restarted with
// backoff, and requests get 503 with the reason and the agent's last
// words long before the cold-start timeout.
func TestFaultAgentCrashesAtStart(t *testing.T) {
	yaml := `apiVersion: flint.dev/v1alpha1
kind: Agent
metadata: {name: crashy}
spec:
  container: {command: ["sh", "-c", "echo 'fatal: OPENAI_API_KEY is not set' >&2; exit 1"], port: 8080}
  timeouts: {coldStart: 60s}
`
	base, up := flintUp(t, writeAgents(t, yaml), "-restart-backoff", "100ms")
	start := time.Now()
	res, body := get(t, newClient(t), base+"/v1/agents/default/crashy/")
	if res.StatusCode != 503 || !strings.Contains(body, "CrashLoopBackOff") || !strings.Contains(body, "OPENAI_API_KEY is not set") {
		t.Fatalf("got %d %s", res.StatusCode, body)
	}
	if res.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if el := time.Since(start); el > 15*time.Second {
		t.Errorf("crash loop reported after %s", el)
	}
	if n := strings.Count(up.out.String(), "crashy-1 | fatal"); n < 3 {
		t.Errorf("agent ran %d times, want restarts", n)
	}
}

// TestFaultSlowAgent: 5s responses are not cut, and fast requests to the
// same agent keep flowing meanwhile.
func TestFaultSlowAgent(t *testing.T) {
	base, _ := flintUp(t, writeAgents(t, echoAgent("echo", "  concurrency: 10\n  scaling: {minReplicas: 1}")))
	c := newClient(t)
	waitReplicas(t, c, base, "echo", 1)
	slow := make(chan error, 3)
	for range 3 {
		go func() {
			res, err := c.Get(base + "/v1/agents/default/echo/slow?sleep=5s")
			if err == nil {
				res.Body.Close()
				if res.StatusCode != 200 {
					err = fmt.Errorf("status %d", res.StatusCode)
				}
			}
			slow <- err
		}()
	}
	for range 20 {
		start := time.Now()
		res, _ := get(t, c, base+"/v1/agents/default/echo/fast")
		if res.StatusCode != 200 || time.Since(start) > 2*time.Second {
			t.Fatalf("fast request: %d after %s", res.StatusCode, time.Since(start))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for range 3 {
		if err := <-slow; err != nil {
			t.Fatalf("slow request: %v", err)
		}
	}
}

func waitReplicas(t *testing.T, c *http.Client, base, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for listAgents(t, c, base)[name].ReadyReplicas != n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %+v, want %d ready", name, listAgents(t, c, base)[name], n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func assertNoFailures(t *testing.T, ok, failed *atomic.Int64, errs interface{ Range(func(k, v any) bool) }, what string) {
	t.Helper()
	if failed.Load() > 0 {
		var list []string
		errs.Range(func(k, _ any) bool { list = append(list, k.(string)); return true })
		t.Fatalf("%d of %d requests failed through %s: %v", failed.Load(), failed.Load()+ok.Load(), what, list)
	}
	if ok.Load() < 100 {
		t.Fatalf("only %d requests ran: the load did not run", ok.Load())
	}
	t.Logf("%d requests, 0 failed, through %s", ok.Load(), what)
}
