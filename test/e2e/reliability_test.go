package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testutil"
	"github.com/flint-dev/flint/internal/wire"
)

// The defects of issue 13, each shown on real `flint proxy` and `flint
// gateway` processes in front of agents served by the test.

// startAgent serves h (plus /healthz) as an agent and returns its address.
func startAgent(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			io.WriteString(w, "ok\n")
			return
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// staticGateway runs a gateway over one sidecar per agent address and
// returns the agent's invocation URL.
func staticGateway(t *testing.T, agentAddrs ...string) string {
	t.Helper()
	file := writeAgents(t, echoAgent("echo", "  concurrency: 100"))
	var replicas []string
	for _, a := range agentAddrs {
		replicas = append(replicas, startReplicaSidecar(t, "default/echo", a))
	}
	addr := testutil.FreeAddr(t)
	startStaticGateway(t, file, addr, replicas)
	return "http://" + addr + "/v1/agents/default/echo"
}

// TestAgentCannotForgeRejection: an agent whose answer carries the
// sidecar's rejection marker (as one relaying another Flint agent's 503
// does) gets each request once, and its answer reaches the client as is,
// without the marker. Before the fix one POST ran ~100 times.
func TestAgentCannotForgeRejection(t *testing.T) {
	var hits atomic.Int64
	forger := func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Header().Set(wire.HeaderRejected, wire.RejectCapacity)
		w.Header().Set(wire.HeaderColdStartWait, "1h")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "relayed\n")
	}
	url := staticGateway(t, startAgent(t, forger), startAgent(t, forger))
	c := newClient(t)
	res, err := c.Post(url+"/work", "text/plain", strings.NewReader("once"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	t.Logf("one POST: the agents ran it %d times; the client got %d %q", hits.Load(), res.StatusCode, body)
	if n := hits.Load(); n != 1 {
		t.Errorf("the agents ran one POST %d times, want 1", n)
	}
	if res.StatusCode != http.StatusServiceUnavailable || string(body) != "relayed\n" {
		t.Errorf("client got %d %q, want the agent's own 503", res.StatusCode, body)
	}
	for k := range res.Header {
		if strings.HasPrefix(k, wire.HeaderPrefix) {
			t.Errorf("the agent's %s: %s reached the client", k, res.Header.Get(k))
		}
	}
}

// TestQueryReachesAgentByteForByte: the agent receives the client's query
// exactly as sent, through gateway and sidecar, whatever its shape. Before
// the fix Go's ReverseProxy re-encoded queries it could not parse: more
// than 10,000 parameters arrived empty, `a=1;b=2&c=3` lost a and b, and a
// malformed escape was re-encoded.
func TestQueryReachesAgentByteForByte(t *testing.T) {
	got := make(chan string, 1)
	url := staticGateway(t, startAgent(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.RawQuery
		io.WriteString(w, "ok\n")
	}))
	many := strings.Repeat("p=1&", 10_050) + "last=1"
	c := newClient(t)
	for _, q := range []string{many, "a=1;b=2&c=3", "a=%zz&b=%4&c=%E2%82%AC&d=+x", "z=2&a=1&a=0"} {
		res, err := c.Get(url + "/q?" + q)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("query %.40q: status %d", q, res.StatusCode)
			continue
		}
		if agent := <-got; agent != q {
			t.Errorf("query %.40q (%d bytes) reached the agent as %.40q (%d bytes)", q, len(q), agent, len(agent))
		}
	}
}

// TestPOSTLoadWhileAgentsStop sends POSTs with bodies while agent processes
// get SIGTERM and SIGKILL, again and again. The sidecar must never panic:
// before the fix every stop logged `http: panic serving …: invalid
// concurrent Body.Read call` 1-9 times (golang/go#68560, see
// docs/reliability.md), each panic closing a kept-alive connection from
// the gateway, so POSTs the killed agent never saw came back 502.
func TestPOSTLoadWhileAgentsStop(t *testing.T) {
	const workers, rounds = 12, 8
	file := writeAgents(t, echoAgent("echo", "  concurrency: 20\n  scaling: {minReplicas: 2}"))
	base, up := flintUp(t, file, "-restart-backoff", "100ms")
	c := newClient(t)
	url := base + "/v1/agents/default/echo/work?sleep=5ms"
	waitReplicas(t, c, base, "echo", 2)

	var ok, failed, refused atomic.Int64
	var errMu sync.Mutex
	errs := map[string]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	body := strings.Repeat("x", 16<<10)
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := c.Post(url, "text/plain", strings.NewReader(body))
				what := ""
				if err != nil {
					what = shortErr(err)
				} else {
					b, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						what = fmt.Sprintf("%d %s", res.StatusCode, reasonOf(b))
					}
				}
				if what == "" {
					ok.Add(1)
					continue
				}
				if strings.HasPrefix(what, "503 ") {
					// Stopping agents this often makes the platform report
					// CrashLoopBackOff (503 + Retry-After) while both replicas
					// restart; that is not a lost request.
					refused.Add(1)
				} else {
					failed.Add(1)
				}
				errMu.Lock()
				errs[what]++
				errMu.Unlock()
			}
		})
	}
	for i := range rounds {
		time.Sleep(600 * time.Millisecond)
		sig := syscall.SIGTERM
		if i%2 == 1 {
			sig = syscall.SIGKILL
		}
		syscall.Kill(replicaPID(t, c, url), sig)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	panics := strings.Count(up.out.String(), "invalid concurrent Body.Read")
	t.Logf("%d POSTs ok, %d failed, %d refused with 503 (%v); %d panics, over %d agent stops", ok.Load(), failed.Load(), refused.Load(), errs, panics, rounds)
	if panics > 0 {
		t.Errorf("gateway and sidecars panicked %d times (invalid concurrent Body.Read)", panics)
	}
	if ok.Load() < 500 {
		t.Errorf("only %d POSTs succeeded: the load did not run", ok.Load())
	}
	// A SIGKILL loses what that agent was serving (it saw those requests);
	// SIGTERM loses nothing.
	if max := int64(rounds / 2 * workers); failed.Load() > max {
		t.Errorf("%d POSTs failed, more than the %d the killed agents can have been serving", failed.Load(), max)
	}
}

// reasonOf is the reason field of a Flint JSON error, to group failures.
func reasonOf(body []byte) string {
	var e struct {
		Reason string `json:"reason"`
		Error  string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	if i := strings.LastIndex(e.Error, ": "); i >= 0 {
		e.Error = e.Error[i+2:]
	}
	return e.Reason + " (" + e.Error + ")"
}

// TestSlowBodyGets408: ten clients trickling bodies at 5 bytes/s are cut
// with 408 once the grace period is over, rather than holding their slots
// until the request timeout; the agent sees none of them complete.
func TestSlowBodyGets408(t *testing.T) {
	var completed atomic.Int64
	agent := startAgent(t, func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err == nil {
			completed.Add(1)
		}
		io.WriteString(w, "ok\n")
	})
	file := writeAgents(t, echoAgent("echo", "  concurrency: 100"))
	addr := testutil.FreeAddr(t)
	startStaticGateway(t, file, addr, []string{startReplicaSidecar(t, "default/echo", agent)}, "-body-grace", "500ms", "-min-body-rate", "100")

	type result struct {
		status int
		after  time.Duration
		err    error
	}
	results := make(chan result, 10)
	for range 10 {
		go func() {
			start := time.Now()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			// Host as curl sends it: a gateway on loopback refuses other names.
			fmt.Fprintf(conn, "POST /v1/agents/default/echo/up HTTP/1.1\r\nHost: %s\r\nContent-Length: 100\r\n\r\n", addr)
			go func() {
				for range 100 {
					if _, err := conn.Write([]byte("x")); err != nil {
						return
					}
					time.Sleep(200 * time.Millisecond)
				}
			}()
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				results <- result{err: err}
				return
			}
			res.Body.Close()
			results <- result{status: res.StatusCode, after: time.Since(start)}
		}()
	}
	for range 10 {
		r := <-results
		if r.err != nil || r.status != http.StatusRequestTimeout || r.after > 5*time.Second {
			t.Errorf("a body at 5 bytes/s (minimum 100 after 500ms): %d after %s, %v; want 408 within seconds", r.status, r.after.Round(time.Millisecond), r.err)
		}
	}
	if n := completed.Load(); n != 0 {
		t.Errorf("the agent read %d trickled bodies to the end", n)
	}
	res, err := newClient(t).Post("http://"+addr+"/v1/agents/default/echo/up", "text/plain", strings.NewReader(strings.Repeat("y", 1<<20)))
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("a normal upload: %v %v", res, err)
	}
	res.Body.Close()
}

// TestAgentsEarlyAnswerReachesClient: an agent that refuses a body over
// its own limit (413) before reading it all gets its answer to the client
// every time, not a 502 blaming it.
func TestAgentsEarlyAnswerReachesClient(t *testing.T) {
	agent := startAgent(t, func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10)); err != nil {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			io.WriteString(w, "too large for me\n")
			return
		}
		io.WriteString(w, "ok\n")
	})
	url := staticGateway(t, agent)
	addr := strings.TrimPrefix(strings.TrimSuffix(url, "/v1/agents/default/echo"), "http://")
	got := map[string]int{}
	for range 13 {
		got[postLikeCurl(t, addr, "/v1/agents/default/echo/up", 8<<20)]++
	}
	t.Logf("13 bodies over the agent's limit: %v", got)
	if got["413 too large for me"] != 13 {
		t.Errorf("the agent's 413 reached the client %d times in 13: %v", got["413 too large for me"], got)
	}
}

// postLikeCurl sends a body of size bytes while reading the answer, as
// curl does (Go's client reports its own write error instead of an early
// answer when the server closes), and returns "status body" or the error.
func postLikeCurl(t *testing.T, addr, path string, size int) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", path, addr, size)
		chunk := []byte(strings.Repeat("z", 64<<10))
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := conn.Write(chunk); err != nil {
				return
			}
		}
	}()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return shortErr(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return fmt.Sprintf("%d %s", res.StatusCode, strings.TrimSpace(string(b)))
}
