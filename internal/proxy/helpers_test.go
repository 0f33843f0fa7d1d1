package proxy

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/flint-dev/flint/internal/testutil"
	"github.com/flint-dev/flint/internal/wire"
)

// eventLoops runs every sidecar of the tests with that many event loops
// (Config.EventLoops): hack/test.sh runs the package once without and once
// with them.
var eventLoops = flag.Int("event-loops", 0, "serve the tests' sidecars with this many event loops")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testConfig is a fast configuration on random loopback ports.
func testConfig(upstream string) Config {
	return Config{
		ServingAddr:          "127.0.0.1:0",
		AdminAddr:            "127.0.0.1:0",
		UpstreamAddr:         upstream,
		ProbeInterval:        5 * time.Millisecond,
		ProbeRecheckInterval: 50 * time.Millisecond,
		ReadyWait:            2 * time.Second,
		QueueTimeout:         5 * time.Second,
		DrainTimeout:         5 * time.Second,
		EventLoops:           *eventLoops,
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("PROXY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// running is a sidecar whose Serve runs in the background.
type running struct {
	*Sidecar
	cancel context.CancelFunc
	done   chan error
}

// stop cancels Serve and returns its result.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // let cleanup read it again
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

// startSidecar runs a sidecar in front of upstream and, when wantReady,
// waits for it to turn ready.
func startSidecar(t testing.TB, cfg Config, wantReady bool) *running {
	t.Helper()
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Sidecar: s, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Serve(ctx) }()
	t.Cleanup(func() { _ = r.stop(t) })
	if wantReady {
		testutil.WaitFor(t, "sidecar ready", s.Ready)
	}
	return r
}

// upstream starts an agent on a random loopback port.
func upstream(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func hostOf(srv *httptest.Server) string { return srv.Listener.Addr().String() }

// newClient is a client with its own connection pool, closed at cleanup so
// no keep-alive goroutines outlive the test.
func newClient(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 100, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

type response struct {
	code   int
	header http.Header
	body   string
	close  bool // the server asked to close the connection
}

func do(t testing.TB, c *http.Client, method, url string, hdr http.Header) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Error(err)
		return response{code: -1}
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		// Errorf, not Fatalf: callers run in goroutines too.
		t.Errorf("%s %s: %v", method, url, err)
		return response{code: -1}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("%s %s: reading body: %v", method, url, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(b), close: resp.Close}
}

func get(t testing.TB, c *http.Client, url string) response {
	t.Helper()
	return do(t, c, http.MethodGet, url, nil)
}

func decodeError(t testing.TB, body string) wire.ErrorBody {
	t.Helper()
	var e wire.ErrorBody
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("body %q is not the JSON error shape: %v", body, err)
	}
	return e
}

// gated is an agent handler that holds each request until released.
type gated struct {
	arrived chan string
	release chan struct{}
}

func newGated() *gated {
	return &gated{arrived: make(chan string, 100), release: make(chan struct{}, 100)}
}

func (g *gated) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/fast" {
		_, _ = io.WriteString(w, "fast")
		return
	}
	g.arrived <- r.URL.Path
	select {
	case <-g.release:
		_, _ = io.WriteString(w, "done "+r.URL.Path)
	case <-r.Context().Done():
	}
}

func (g *gated) waitArrivals(t testing.TB, n int) {
	t.Helper()
	for range n {
		select {
		case <-g.arrived:
		case <-time.After(10 * time.Second):
			t.Fatalf("request did not reach the agent")
		}
	}
}
