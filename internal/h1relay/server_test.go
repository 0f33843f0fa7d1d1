package h1relay_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/h1relay"
)

// ---- 1. relaying ----------------------------------------------------------

// A plain GET and a POST with a small body are relayed, not handed off: the
// upstream gets the method and the target byte for byte, the Host, the
// body, X-Forwarded-For with the client's address appended to the incoming
// lines (joined), and X-Forwarded-Proto defaulted to http (kept when sent).
func TestRelaysPlainRequests(t *testing.T) {
	e := start(t, config{})
	c := e.dial(t)

	const getTarget = "/a/b;v=1/%7Euser:x@y?q=x%20y&z=/?&empty="
	c.send(t, "GET "+getTarget+" HTTP/1.1\r\nHost: api.example.test:8080\r\n"+
		"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.2\r\nX-Other: o\r\n\r\n")
	res, body := c.read(t, http.MethodGet)
	wantServedBy(t, res, body, "upstream", "up GET "+getTarget+" ")

	const postBody = "hello, relay\r\n\r\nstill the body"
	c.send(t, "POST /submit?id=42 HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: text/plain\r\n"+
		"Content-Length: "+strconv.Itoa(len(postBody))+"\r\nX-Forwarded-Proto: https\r\n\r\n"+postBody)
	res, body = c.read(t, http.MethodPost)
	wantServedBy(t, res, body, "upstream", "up POST /submit?id=42 "+postBody)

	if n := e.h.relayed.Load(); n != 2 {
		t.Errorf("the relay served %d requests, want 2", n)
	}
	if n := e.fallback.count(); n != 0 || e.handoffs.Load() != 0 {
		t.Errorf("the fallback served %d requests on %d connections, want none", n, e.handoffs.Load())
	}

	g, ok := e.agent.find(getTarget)
	if !ok {
		t.Fatalf("the upstream did not see %s; saw %+v", getTarget, e.agent.all())
	}
	if g.method != "GET" || g.host != "api.example.test:8080" || g.body != "" || g.header.Get("X-Other") != "o" {
		t.Errorf("upstream saw %s %s Host %q body %q X-Other %q", g.method, g.uri, g.host, g.body, g.header.Get("X-Other"))
	}
	if xff := g.header.Values("X-Forwarded-For"); len(xff) != 1 || xff[0] != "203.0.113.7, 198.51.100.2, 127.0.0.1" {
		t.Errorf("upstream saw X-Forwarded-For %q, want one line %q", xff, "203.0.113.7, 198.51.100.2, 127.0.0.1")
	}
	if p := g.header.Values("X-Forwarded-Proto"); len(p) != 1 || p[0] != "http" {
		t.Errorf("upstream saw X-Forwarded-Proto %q, want [http]", p)
	}

	p, ok := e.agent.find("/submit?id=42")
	if !ok {
		t.Fatal("the upstream did not see the POST")
	}
	if p.method != "POST" || p.host != "api.example.test" || p.body != postBody || p.header.Get("Content-Type") != "text/plain" {
		t.Errorf("upstream saw %s %s Host %q body %q Content-Type %q", p.method, p.uri, p.host, p.body, p.header.Get("Content-Type"))
	}
	if xff := p.header.Values("X-Forwarded-For"); len(xff) != 1 || xff[0] != "127.0.0.1" {
		t.Errorf("upstream saw X-Forwarded-For %q, want [127.0.0.1]", xff)
	}
	if p := p.header.Values("X-Forwarded-Proto"); len(p) != 1 || p[0] != "https" {
		t.Errorf("upstream saw X-Forwarded-Proto %q, want the client's [https]", p)
	}
}

// ---- 2. handoff -----------------------------------------------------------

// Each request the relay does not take goes, with the connection, to the
// fallback, which answers it correctly (its handler sees the request
// whole), and the requests that follow on that connection keep working,
// served by the fallback from then on, even ones the relay would take.
func TestHandsOffToFallback(t *testing.T) {
	big := strings.Repeat("b", h1relay.MaxBody+1)
	cases := []struct {
		name string
		// exchange writes the request and reads its answer.
		exchange func(t *testing.T, c *client) (*http.Response, string)
		method   string
		uri      string
		proto    string
		body     string
	}{
		{
			name: "chunked body",
			exchange: func(t *testing.T, c *client) (*http.Response, string) {
				c.send(t, "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
				return c.read(t, "POST")
			},
			method: "POST", uri: "/chunked", proto: "HTTP/1.1", body: "hello world",
		},
		{
			name: "Upgrade",
			exchange: func(t *testing.T, c *client) (*http.Response, string) {
				c.send(t, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
				return c.read(t, "GET")
			},
			method: "GET", uri: "/ws", proto: "HTTP/1.1",
		},
		{
			name: "Expect 100-continue",
			exchange: func(t *testing.T, c *client) (*http.Response, string) {
				c.send(t, "PUT /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
				res, _ := c.read(t, "PUT")
				if res.StatusCode != http.StatusContinue {
					t.Errorf("first answer %d, want 100 Continue before the body", res.StatusCode)
				}
				c.send(t, "data")
				return c.read(t, "PUT")
			},
			method: "PUT", uri: "/expect", proto: "HTTP/1.1", body: "data",
		},
		{
			name: "HTTP/1.0",
			exchange: func(t *testing.T, c *client) (*http.Response, string) {
				c.send(t, "GET /old HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
				return c.read(t, "GET")
			},
			method: "GET", uri: "/old", proto: "HTTP/1.0",
		},
		{
			name: "head over 16 KiB",
			exchange: func(t *testing.T, c *client) (*http.Response, string) {
				c.send(t, "GET /bighead HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("h", 17<<10)+"\r\n\r\n")
				return c.read(t, "GET")
			},
			method: "GET", uri: "/bighead", proto: "HTTP/1.1",
		},
		{
			name: "body over MaxBody",
			exchange: func(t *testing.T, c *client) (*http.Response, string) {
				c.send(t, "POST /bigbody HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(len(big))+"\r\n\r\n"+big)
				return c.read(t, "POST")
			},
			method: "POST", uri: "/bigbody", proto: "HTTP/1.1", body: big,
		},
		{
			name: "ServeRelay refuses",
			exchange: func(t *testing.T, c *client) (*http.Response, string) {
				c.send(t, "GET /refused HTTP/1.1\r\nHost: x\r\nX-Refuse: yes\r\n\r\n")
				return c.read(t, "GET")
			},
			method: "GET", uri: "/refused", proto: "HTTP/1.1",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, config{refuse: func(ex *h1relay.Exchange) bool {
				_, ok := ex.Head.Get("X-Refuse")
				return ok
			}})
			c := e.dial(t)
			// A request the relay takes first: the handoff happens mid-connection.
			c.send(t, get("/first", "x"))
			res, body := c.read(t, "GET")
			wantServedBy(t, res, body, "upstream", "up GET /first ")

			res, body = tc.exchange(t, c)
			wantServedBy(t, res, body, "fallback", fmt.Sprintf("fallback %s %s %s %s", tc.method, tc.uri, tc.proto, tc.body))
			s, ok := e.fallback.find(tc.uri)
			if !ok {
				t.Fatalf("the fallback did not see %s; saw %d requests", tc.uri, e.fallback.count())
			}
			if s.method != tc.method || s.proto != tc.proto || s.body != tc.body || s.host != "x" {
				t.Errorf("the fallback saw %s %s %s Host %q and a %d-byte body", s.method, s.uri, s.proto, s.host, len(s.body))
			}

			// Later requests on the connection: the fallback's now.
			for _, target := range []string{"/after1", "/after2?x=1"} {
				c.send(t, get(target, "x"))
				res, body = c.read(t, "GET")
				wantServedBy(t, res, body, "fallback", "fallback GET "+target+" HTTP/1.1 ")
			}
			if n := e.h.relayed.Load(); n != 1 {
				t.Errorf("the relay served %d requests, want only the first", n)
			}
			if n := e.handoffs.Load(); n != 1 {
				t.Errorf("%d connections handed off, want 1", n)
			}
			if _, ok := e.agent.find(tc.uri); ok {
				t.Errorf("the upstream saw %s: the relay sent it on", tc.uri)
			}
		})
	}
}

// ---- 3. pipelining --------------------------------------------------------

// Requests pipelined in one write are answered in order on the same
// connection: the relay serves the first two, hands off at the third with
// the fourth already read, and the fallback serves both.
func TestPipelinedHandoff(t *testing.T) {
	e := start(t, config{})
	c := e.dial(t)
	c.send(t, get("/p1", "x")+get("/p2?q=2", "x")+
		"POST /p3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"+
		get("/p4", "x"))
	c.readServed(t,
		served{"upstream", "up GET /p1 "},
		served{"upstream", "up GET /p2?q=2 "},
		served{"fallback", "fallback POST /p3 HTTP/1.1 abc"},
		served{"fallback", "fallback GET /p4 HTTP/1.1 "},
	)
	if n := e.h.relayed.Load(); n != 2 {
		t.Errorf("the relay served %d requests, want 2", n)
	}
	if n := e.handoffs.Load(); n != 1 {
		t.Errorf("%d connections handed off, want 1", n)
	}
}

// ---- 4. Connection: close ---------------------------------------------------

// A client that sends Connection: close gets an answer saying so and the
// connection closes after it; the upstream does not get the hop-by-hop
// Connection header.
func TestClientConnectionClose(t *testing.T) {
	e := start(t, config{})
	c := e.dial(t)
	c.send(t, "GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	res, body := c.read(t, "GET")
	wantServedBy(t, res, body, "upstream", "up GET /bye ")
	if !res.Close { // ReadResponse takes "Connection: close" out of the header into Close
		t.Error("the answer does not say Connection: close")
	}
	if err := c.closedWithin(5 * time.Second); err != nil {
		t.Error(err)
	}
	if s, ok := e.agent.find("/bye"); !ok || s.header.Get("Connection") != "" {
		t.Errorf("upstream saw %v, Connection %q; want the request without Connection", ok, s.header.Get("Connection"))
	}
	if e.h.relayed.Load() != 1 || e.handoffs.Load() != 0 {
		t.Errorf("relayed %d, handed off %d; want 1, 0", e.h.relayed.Load(), e.handoffs.Load())
	}
}
