package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/platform/platformtest"
)

// rawStatus sends a raw HTTP/1.1 request to addr and returns the status code.
func rawStatus(t *testing.T, addr, req string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response to %q: %v", req, err)
	}
	res.Body.Close()
	return res.StatusCode
}

// countingAgent is an agent behind a real sidecar that counts requests.
func countingAgent(t *testing.T) (*atomic.Int64, *httptest.Server, *platformtest.Platform, *http.Header) {
	t.Helper()
	var hits atomic.Int64
	var last http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		last = r.Header.Clone()
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	p := platformtest.New(testAgent(0))
	p.SetReady(echoKey, startSidecar(t, up, 0, "echo-1"))
	return &hits, up, p, &last
}

func TestBadInputGetsClean4xxAndNeverReachesAgent(t *testing.T) {
	hits, _, p, _ := countingAgent(t)
	_, gw := startGateway(t, p, nil, func(c *Config) { c.MaxBodyBytes = 1024; c.MaxHeaderBytes = 4096 })
	addr := gw.Listener.Addr().String()
	cases := []struct {
		name string
		req  string
		want int
	}{
		{"body over the limit", "POST /v1/agents/default/echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n" + strings.Repeat("a", 2048), 413},
		{"headers over the limit", "GET /v1/agents/default/echo/ HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 8192) + "\r\n\r\n", 431},
		{"two Content-Lengths", "POST /v1/agents/default/echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"dot-dot segment", "GET /v1/agents/default/echo/../../other/x HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"encoded dot-dot", "GET /v1/agents/default/echo/%2e%2e/x HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"encoded slash in the name", "GET /v1/agents/default/ec%2Fho/x HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"oversized agent name", "GET /v1/agents/default/" + strings.Repeat("a", 300) + "/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"invalid UTF-8", "GET /v1/agents/default/echo/%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"encoded NUL", "GET /v1/agents/default/echo/a%00b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"bad escape", "GET /v1/agents/default/echo/%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	}
	for _, tc := range cases {
		if got := rawStatus(t, addr, tc.req); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the agent saw %d bad requests", n)
	}
}

// TestContentLengthWithChunkedCannotSmuggle sends the classic CL.TE
// smuggling payload. Go's server, as RFC 9112 §6.1 allows, drops the
// Content-Length and frames by Transfer-Encoding; the gateway re-frames the
// request towards the agent, so the bytes after the chunked body can only
// be read as a (malformed) next request on the client's own connection,
// never reach the agent as a hidden request.
func TestContentLengthWithChunkedCannotSmuggle(t *testing.T) {
	hits, _, p, last := countingAgent(t)
	_, gw := startGateway(t, p, nil, nil)
	c, err := net.Dial("tcp", gw.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST /v1/agents/default/echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"0\r\n\r\nGET /v1/agents/default/echo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
	r := bufio.NewReader(c)
	for range 2 {
		res, err := http.ReadResponse(r, nil)
		if err != nil {
			break
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	if n := hits.Load(); n > 2 {
		t.Fatalf("agent saw %d requests", n)
	}
	if h := *last; h.Get("Content-Length") != "" {
		t.Errorf("agent received the client's Content-Length %q beside chunked framing", h.Get("Content-Length"))
	}
}

func TestChunkedBodyOverLimitIs413(t *testing.T) {
	_, _, p, _ := countingAgent(t)
	_, gw := startGateway(t, p, nil, func(c *Config) { c.MaxBodyBytes = 1024 })
	body := io.MultiReader(strings.NewReader(strings.Repeat("x", 4096)))
	req, _ := http.NewRequest("POST", gw.URL+"/v1/agents/default/echo/", body)
	req.ContentLength = -1 // chunked: the size is only known while streaming
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 {
		t.Fatalf("got %d, want 413", res.StatusCode)
	}
}

func TestHopByHopHeadersCannotSmuggle(t *testing.T) {
	hits, _, p, last := countingAgent(t)
	_, gw := startGateway(t, p, nil, nil)
	req, _ := http.NewRequest("GET", gw.URL+"/v1/agents/default/echo/", nil)
	// A client naming headers in Connection must not strip what the
	// gateway sets, nor pass hop-by-hop headers on.
	req.Header.Set("Connection", "X-Forwarded-For, X-Forwarded-Prefix, X-Secret, Keep-Alive")
	req.Header.Set("X-Secret", "should-not-pass")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || hits.Load() != 1 {
		t.Fatalf("got %d, hits %d", res.StatusCode, hits.Load())
	}
	h := *last
	if h.Get("X-Secret") != "" || h.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop headers reached the agent: %v", h)
	}
	if xff := h.Get("X-Forwarded-For"); xff == "" || strings.Contains(xff, "6.6.6.6") {
		t.Errorf("X-Forwarded-For = %q: the client's value must be replaced by the gateway's", xff)
	}
	if h.Get("X-Forwarded-Prefix") != "/v1/agents/default/echo" {
		t.Errorf("X-Forwarded-Prefix = %q", h.Get("X-Forwarded-Prefix"))
	}
}

func TestSlowHeadersAreCutOff(t *testing.T) {
	_, gw := startGateway(t, platformtest.New(testAgent(0)), nil, func(c *Config) { c.ReadHeaderTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", gw.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /v1/agents/default/echo/ HTTP/1.1\r\nHost: x\r\n") // never finishes
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("connection was not closed by the gateway: %v", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("slow client held the connection %s", el)
	}
}
