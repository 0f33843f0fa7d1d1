package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
	"github.com/flint-dev/flint/internal/testutil"
	"github.com/flint-dev/flint/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func client(t *testing.T) *http.Client {
	c := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// background is a client for requests a test fires and does not wait for:
// without keep-alive nothing of it outlives the request.
func background() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

// fire sends a request the test does not wait for, closing its response.
func fire(url string) {
	res, err := background().Get(url)
	if err == nil {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}

func readJSON(t *testing.T, res *http.Response) map[string]any {
	t.Helper()
	defer res.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		t.Fatalf("decode JSON body: %v", err)
	}
	return m
}

func TestHotPathForwardsToAgent(t *testing.T) {
	var got *http.Request
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		io.WriteString(w, "hello from agent")
	}))
	defer up.Close()
	p := platformtest.New(testAgent(10))
	p.SetReady(echoKey, startSidecar(t, up, 10, "echo-1"))
	_, gw := startGateway(t, p, nil, nil)

	req, _ := http.NewRequest("GET", gw.URL+"/v1/agents/default/echo/a/b%2Fc?x=1", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "hello from agent" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	if got.URL.Path != "/a/b/c" || got.URL.RawPath != "/a/b%2Fc" || got.URL.RawQuery != "x=1" {
		t.Errorf("agent saw path %q raw %q query %q", got.URL.Path, got.URL.RawPath, got.URL.RawQuery)
	}
	if tp := got.Header.Get("traceparent"); tp != req.Header.Get("traceparent") {
		t.Errorf("traceparent = %q, want it preserved", tp)
	}
	if got.Header.Get("X-Forwarded-For") == "" || got.Header.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("X-Forwarded-* missing: %v", got.Header)
	}
	if pfx := got.Header.Get("X-Forwarded-Prefix"); pfx != "/v1/agents/default/echo" {
		t.Errorf("X-Forwarded-Prefix = %q", pfx)
	}
}

func TestUnknownAgentIs404JSON(t *testing.T) {
	_, gw := startGateway(t, platformtest.New(testAgent(0)), nil, nil)
	res, err := client(t).Get(gw.URL + "/v1/agents/default/nope/")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 404 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if m := readJSON(t, res); m["agent"] != "default/nope" || m["reason"] != "AgentNotFound" {
		t.Errorf("body = %v", m)
	}
}

func TestMalformedRouteIs400(t *testing.T) {
	_, gw := startGateway(t, platformtest.New(testAgent(0)), nil, nil)
	for _, path := range []string{"/v1/agents/default/echo/..%2F..%2Fx", "/v1/agents/Default/echo/"} {
		res, err := client(t).Get(gw.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 400 {
			t.Errorf("%s: got %d, want 400", path, res.StatusCode)
		}
		readJSON(t, res)
	}
}

func TestSSEStreamsIncrementally(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-release // the second event waits until the client saw the first
		fmt.Fprint(w, "data: two\n\n")
	}))
	defer up.Close()
	p := platformtest.New(testAgent(0))
	p.SetReady(echoKey, startSidecar(t, up, 0, "echo-1"))
	_, gw := startGateway(t, p, nil, nil)

	res, err := client(t).Get(gw.URL + "/v1/agents/default/echo/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	r := bufio.NewReader(res.Body)
	line, err := r.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(r)
	if !strings.Contains(string(rest), "data: two") {
		t.Fatalf("second event missing: %q", rest)
	}
}

func TestRetriesFullReplicaOnAnother(t *testing.T) {
	block := make(chan struct{})
	var served [2]counter
	mk := func(i int) *httptest.Server {
		return httptest.NewServer(served[i].handler(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/block" {
				<-block
			}
			fmt.Fprintf(w, "replica %d", i)
		}))
	}
	up0, up1 := mk(0), mk(1)
	defer up0.Close()
	defer up1.Close()
	defer close(block)
	ep0, ep1 := startSidecar(t, up0, 1, "echo-0"), startSidecar(t, up1, 1, "echo-1")
	p := platformtest.New(testAgent(1))
	p.SetReady(echoKey, ep0, ep1)
	_, gw := startGateway(t, p, nil, nil)

	// Fill replica 0 behind the gateway's back, as another gateway would.
	go fire("http://" + ep0.Addr + "/block")
	testutil.WaitFor(t, "replica 0 to be full", func() bool { return served[0].n.Load() == 1 })

	for i := range 20 {
		body := strings.NewReader(fmt.Sprintf("payload %d", i))
		res, err := client(t).Post(gw.URL+"/v1/agents/default/echo/", "text/plain", body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != "replica 1" {
			t.Fatalf("request %d: got %d %q, want replica 1", i, res.StatusCode, b)
		}
	}
}

func TestAllFullHoldsUntilSlotFrees(t *testing.T) {
	block := make(chan struct{})
	var hits counter
	up := httptest.NewServer(hits.handler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-block
		}
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	p := platformtest.New(testAgent(1))
	p.SetReady(echoKey, startSidecar(t, up, 1, "echo-1"))
	g, gw := startGateway(t, p, nil, nil)

	slow := make(chan error, 1)
	go func() {
		res, err := background().Get(gw.URL + "/v1/agents/default/echo/slow")
		if err == nil {
			res.Body.Close()
		}
		slow <- err
	}()
	testutil.WaitFor(t, "the slow request to reach the agent", func() bool { return hits.n.Load() == 1 })

	held := make(chan *http.Response, 1)
	go func() {
		res, err := background().Get(gw.URL + "/v1/agents/default/echo/fast")
		if err != nil {
			t.Error(err)
		}
		held <- res
	}()
	testutil.WaitFor(t, "one held request", func() bool { return g.Demand(echoKey).Held == 1 })
	close(block)
	res := <-held
	if res == nil {
		t.Fatal("held request failed")
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get(wire.HeaderQueueWait) == "" {
		t.Fatalf("held request: %d, wait header %q", res.StatusCode, res.Header.Get(wire.HeaderQueueWait))
	}
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
}

func TestAllFullPastHoldIs503WithRetryAfter(t *testing.T) {
	block := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer up.Close()
	defer close(block)
	p := platformtest.New(testAgent(1))
	p.SetReady(echoKey, startSidecar(t, up, 1, "echo-1"))
	g, gw := startGateway(t, p, nil, func(c *Config) { c.CapacityHold = 200 * time.Millisecond })
	go fire(gw.URL + "/v1/agents/default/echo/")
	testutil.WaitFor(t, "the gateway to count the request", func() bool { return g.Demand(echoKey).RequestsTotal == 1 })
	time.Sleep(50 * time.Millisecond)

	res, err := client(t).Get(gw.URL + "/v1/agents/default/echo/")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 503 || res.Header.Get("Retry-After") != "1" {
		t.Fatalf("got %d Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if m := readJSON(t, res); m["reason"] != "NoCapacity" {
		t.Errorf("body = %v", m)
	}
	if d := g.Demand(echoKey); d.RejectedTotal != 1 {
		t.Errorf("RejectedTotal = %d, want 1", d.RejectedTotal)
	}
}

func TestConnectionRefusedIsRetried(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadAddr := dead.Listener.Addr().String()
	dead.Close()
	p := platformtest.New(testAgent(0))
	p.SetReady(echoKey, platform.Endpoint{Addr: deadAddr, Replica: "gone"}, startSidecar(t, up, 0, "echo-1"))
	_, gw := startGateway(t, p, nil, nil)
	for range 10 {
		res, err := client(t).Post(gw.URL+"/v1/agents/default/echo/", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("got %d", res.StatusCode)
		}
	}
}

func TestColdStartHoldsThenServes(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "warm") }))
	defer up.Close()
	p := platformtest.New(testAgent(0))
	var once sync.Once
	poked := make(chan struct{})
	scaler := pokeFunc(func(k platform.AgentKey) {
		once.Do(func() {
			close(poked)
			go func() {
				time.Sleep(100 * time.Millisecond)
				p.SetReady(k, startSidecar(t, up, 0, "echo-1"))
			}()
		})
	})
	_, gw := startGateway(t, p, scaler, nil)
	res, err := client(t).Get(gw.URL + "/v1/agents/default/echo/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "warm" {
		t.Fatalf("got %d %q", res.StatusCode, b)
	}
	select {
	case <-poked:
	default:
		t.Fatal("autoscaler was not poked")
	}
	if w := res.Header.Get(wire.HeaderColdStartWait); w == "" {
		t.Error("cold-start wait header missing")
	}
}

func TestColdStartTimeoutIs504JSON(t *testing.T) {
	a := testAgent(0)
	a.Spec.Timeouts.ColdStart = &metav1.Duration{Duration: 150 * time.Millisecond}
	_, gw := startGateway(t, platformtest.New(a), nil, nil)
	start := time.Now()
	res, err := client(t).Get(gw.URL + "/v1/agents/default/echo/")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 504 {
		t.Fatalf("got %d, want 504", res.StatusCode)
	}
	m := readJSON(t, res)
	if m["agent"] != "default/echo" || m["reason"] != "ColdStartTimeout" || m["waitedSeconds"].(float64) < 0.15 {
		t.Errorf("body = %v", m)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %s", el)
	}
}

func TestHoldQueueFullIs503(t *testing.T) {
	a := testAgent(0)
	a.Spec.Timeouts.ColdStart = &metav1.Duration{Duration: 2 * time.Second}
	g, gw := startGateway(t, platformtest.New(a), nil, func(c *Config) { c.MaxHeld = 1 })
	go fire(gw.URL + "/v1/agents/default/echo/") // held until its cold start times out
	testutil.WaitFor(t, "one held request", func() bool { return g.Demand(echoKey).Held == 1 })
	res, err := client(t).Get(gw.URL + "/v1/agents/default/echo/")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d", res.StatusCode)
	}
	if m := readJSON(t, res); m["reason"] != "HoldQueueFull" {
		t.Errorf("body = %v", m)
	}
}

func TestWebSocketEchoThroughGateway(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	}))
	defer up.Close()
	// Also while the gateway drains: an upgrade keeps "Connection: Upgrade".
	for _, draining := range []bool{false, true} {
		t.Run(fmt.Sprintf("draining=%v", draining), func(t *testing.T) {
			p := platformtest.New(testAgent(5))
			p.SetReady(echoKey, startSidecar(t, up, 5, "echo-1"))
			g, gw := startGateway(t, p, nil, nil)
			if draining {
				g.Drain()
			}
			wsEcho(t, g, gw.URL)
		})
	}
}

func wsEcho(t *testing.T, g *Gateway, base string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/v1/agents/default/echo/ws", &websocket.DialOptions{HTTPClient: client(t)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		msg := fmt.Sprintf("ping %d", i)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != msg {
			t.Fatalf("echo %d: %q %v", i, got, err)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
	// The replica's slot is given back when the connection ends.
	testutil.WaitFor(t, "the replica's slot to be given back", func() bool {
		set := g.state(echoKey).set.Load()
		return set != nil && set.backends[0].inFlight.Load() == 0
	})
}
