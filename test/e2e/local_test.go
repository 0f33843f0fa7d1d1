package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testutil"
	"github.com/flint-dev/flint/internal/wire"
)

type agentSummary struct {
	Name          string `json:"name"`
	Replicas      int32  `json:"replicas"`
	ReadyReplicas int    `json:"readyReplicas"`
}

func listAgents(t *testing.T, c *http.Client, base string) map[string]agentSummary {
	t.Helper()
	res, err := c.Get(base + "/v1/agents")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var list []agentSummary
	if err := json.NewDecoder(res.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	out := map[string]agentSummary{}
	for _, a := range list {
		out[a.Name] = a
	}
	return out
}

func TestUpColdStartThenScaleToZero(t *testing.T) {
	file := writeAgents(t, echoAgent("echo", "  concurrency: 10\n  scaling: {scaleToZeroAfter: 2s, stableWindow: 6s}"))
	base, _ := flintUp(t, file)
	c := newClient(t)

	if a := listAgents(t, c, base)["echo"]; a.Replicas != 0 {
		t.Fatalf("before any request: %d replicas, want 0", a.Replicas)
	}
	start := time.Now()
	res, body := get(t, c, base+"/v1/agents/default/echo/hello?x=1")
	coldStart := time.Since(start)
	if res.StatusCode != 200 || !strings.Contains(body, `"/hello"`) {
		t.Fatalf("cold request: %d %s", res.StatusCode, body)
	}
	if res.Header.Get(wire.HeaderColdStartWait) == "" {
		t.Error("cold response lacks X-Flint-Cold-Start-Wait")
	}
	t.Logf("cold start (request at zero to response): %s, held %s", coldStart, res.Header.Get(wire.HeaderColdStartWait))

	res, _ = get(t, c, base+"/v1/agents/default/echo/again")
	if res.StatusCode != 200 || res.Header.Get(wire.HeaderColdStartWait) != "" {
		t.Fatalf("warm request: %d, cold header %q", res.StatusCode, res.Header.Get(wire.HeaderColdStartWait))
	}
	if a := listAgents(t, c, base)["echo"]; a.Replicas != 1 || a.ReadyReplicas != 1 {
		t.Fatalf("after requests: %+v, want 1 ready replica", a)
	}
	deadline := time.Now().Add(45 * time.Second)
	for listAgents(t, c, base)["echo"].Replicas != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("echo did not scale to zero: %+v", listAgents(t, c, base)["echo"])
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("scaled to zero %s after the last request", time.Since(start)-coldStart)
}

func TestUpStreamsSSE(t *testing.T) {
	file := writeAgents(t, echoAgent("echo", "  scaling: {minReplicas: 1}"))
	base, _ := flintUp(t, file)
	c := newClient(t)
	res, err := c.Get(base + "/v1/agents/default/echo/sse?n=3&interval=400ms")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines := readLines(ctx, res.Body)
	var stamps []time.Time
	for line := range lines {
		if strings.HasPrefix(line, "data:") {
			stamps = append(stamps, time.Now())
		}
	}
	if len(stamps) != 3 {
		t.Fatalf("got %d events, want 3", len(stamps))
	}
	// Events 400ms apart at the agent must arrive spread out, not at once.
	if gap := stamps[2].Sub(stamps[0]); gap < 500*time.Millisecond {
		t.Fatalf("events arrived within %s: the stream was buffered", gap)
	}
}

func TestUpRefusesInvalidAgent(t *testing.T) {
	file := writeAgents(t, echoAgent("echo", "  scaling: {minReplicas: 5, maxReplicas: 2}"))
	cmd := exec.Command(flintBin, "up", "-f", file, "-addr", testutil.FreeAddr(t))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("flint up accepted an invalid agent:\n%s", out)
	}
	for _, want := range []string{file, "spec.scaling.minReplicas", "minReplicas (5) must not exceed maxReplicas (2)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error output lacks %q:\n%s", want, out)
		}
	}
}

// TestSidecarSIGTERMUnderLoadLosesNothing runs two real replicas (echo
// agent + `flint proxy` processes) behind `flint gateway`, SIGTERMs one
// sidecar under load, and checks every request succeeded and the sidecar
// exited 0 after draining.
func TestSidecarSIGTERMUnderLoadLosesNothing(t *testing.T) {
	file := writeAgents(t, echoAgent("echo", "  concurrency: 20"))
	args := []string{"gateway", "-f", file, "-check-interval", "100ms"}
	var sidecars []*proc
	for range 2 {
		agentAddr, serving, admin := testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t)
		_, port, _ := strings.Cut(agentAddr, ":")
		startEnv(t, repoRoot, []string{"PORT=" + port}, echoBin)
		sc := start(t, repoRoot, flintBin, "proxy", "-serving-addr", serving, "-admin-addr", admin,
			"-upstream", agentAddr, "-concurrency", "20", "-drain-delay", "1s", "-probe-path", "/healthz")
		sidecars = append(sidecars, sc)
		args = append(args, "-replica", fmt.Sprintf("default/echo=%s@%s", serving, admin))
	}
	gwAddr := testutil.FreeAddr(t)
	gw := start(t, repoRoot, flintBin, append(args, "-addr", gwAddr)...)
	gw.waitOutput(t, "listening", 20*time.Second)
	c := newClient(t)
	url := "http://" + gwAddr + "/v1/agents/default/echo/work?sleep=20ms"
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := c.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 && strings.Count(gw.out.String(), "ready=true") == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas never became ready:\n%s", gw.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	stop := make(chan struct{})
	ok, failed, errs, wg := load(c, url, 16, stop)
	time.Sleep(time.Second)
	sidecars[0].signal(syscall.SIGTERM)
	code := sidecars[0].wait(t, 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	if code != 0 {
		t.Errorf("sidecar exited %d after SIGTERM, want 0", code)
	}
	if failed.Load() > 0 {
		var list []string
		errs.Range(func(k, _ any) bool { list = append(list, k.(string)); return true })
		t.Fatalf("%d of %d requests failed during the sidecar's drain: %v", failed.Load(), failed.Load()+ok.Load(), list)
	}
	if ok.Load() < 100 {
		t.Fatalf("only %d requests were sent: the load did not run", ok.Load())
	}
	t.Logf("%d requests, 0 failed, through a sidecar SIGTERM", ok.Load())
}

// load sends requests from workers until stop is closed, counting failures.
func load(c *http.Client, url string, workers int, stop <-chan struct{}) (ok, failed *atomic.Int64, errs *sync.Map, wg *sync.WaitGroup) {
	ok, failed, errs, wg = &atomic.Int64{}, &atomic.Int64{}, &sync.Map{}, &sync.WaitGroup{}
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := c.Get(url)
				if err != nil {
					failed.Add(1)
					errs.Store(err.Error(), true)
					continue
				}
				if res.StatusCode != 200 {
					b, _ := io.ReadAll(io.LimitReader(res.Body, 300))
					res.Body.Close()
					failed.Add(1)
					errs.Store(fmt.Sprintf("status %d %s", res.StatusCode, b), true)
					continue
				}
				res.Body.Close()
				ok.Add(1)
			}
		})
	}
	return
}
