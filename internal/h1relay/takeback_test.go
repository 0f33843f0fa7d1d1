package h1relay_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/h1relay"
)

// framedFallback answers "fallback METHOD URI BODY" with a Content-Length,
// as a proxied agent's answer usually is; the query makes it answer in the
// ways net/http keeps a connection for itself or closes it.
type framedFallback struct{ recorder }

func (f *framedFallback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var body []byte
	if q.Get("unread") == "" {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	f.add(r, body)
	answer := fmt.Sprintf("fallback %s %s %s", r.Method, r.RequestURI, body)
	w.Header().Set("X-Served-By", "fallback")
	switch {
	case q.Get("chunked") != "":
		w.(http.Flusher).Flush() // no length: net/http chunks the answer
		_, _ = io.WriteString(w, answer)
		return
	case q.Get("close") != "":
		w.Header().Set("Connection", "close")
	case q.Get("te") != "":
		w.Header().Set("Transfer-Encoding", "chunked") // net/http drops the length for it
	case q.Get("short") != "":
		answer = answer[:len(answer)-1] // declared one byte longer than written
		w.Header().Set("Content-Length", strconv.Itoa(len(answer)+1))
		_, _ = io.WriteString(w, answer)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
	_, _ = io.WriteString(w, answer)
}

func startFramed(t *testing.T) (*env, *framedFallback) {
	f := &framedFallback{}
	e := start(t, config{fallback: f, refuse: func(ex *h1relay.Exchange) bool {
		_, ok := ex.Head.Get("X-Refuse")
		return ok
	}})
	return e, f
}

// After net/http has served a request the relay handed over because it
// does not parse it, with an answer framed by its length and the request's
// body read, the connection comes back to the relay: the next requests are relayed, and the next
// request the relay does not take is handed over again.
func TestTakesConnectionBack(t *testing.T) {
	big := strings.Repeat("b", h1relay.MaxBody+1)
	cases := []struct {
		name     string
		exchange func(t *testing.T, c *client) (*http.Response, string)
		want     string
	}{
		{
			name: "chunked body",
			exchange: func(t *testing.T, c *client) (*http.Response, string) {
				c.send(t, "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
				return c.read(t, "POST")
			},
			want: "fallback POST /chunked hello",
		},
		{
			name: "body over MaxBody",
			exchange: func(t *testing.T, c *client) (*http.Response, string) {
				c.send(t, "POST /bigbody HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(len(big))+"\r\n\r\n"+big)
				return c.read(t, "POST")
			},
			want: "fallback POST /bigbody " + big,
		},
		{
			name: "Expect 100-continue",
			exchange: func(t *testing.T, c *client) (*http.Response, string) {
				c.send(t, "PUT /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
				if res, _ := c.read(t, "PUT"); res.StatusCode != http.StatusContinue {
					t.Errorf("first answer %d, want 100 Continue", res.StatusCode)
				}
				c.send(t, "data")
				return c.read(t, "PUT")
			},
			want: "fallback PUT /expect data",
		},
		{
			name: "head over 16 KiB",
			exchange: func(t *testing.T, c *client) (*http.Response, string) {
				c.send(t, "GET /bighead HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("h", 17<<10)+"\r\n\r\n")
				return c.read(t, "GET")
			},
			want: "fallback GET /bighead ",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := startFramed(t)
			c := e.dial(t)
			c.send(t, get("/first", "x"))
			res, body := c.read(t, "GET")
			wantServedBy(t, res, body, "upstream", "up GET /first ")

			for round := 1; round <= 2; round++ {
				res, body = tc.exchange(t, c)
				wantServedBy(t, res, body, "fallback", tc.want)
				for _, target := range []string{"/after1", "/after2?x=1"} {
					c.send(t, get(target, "x"))
					res, body = c.read(t, "GET")
					wantServedBy(t, res, body, "upstream", "up GET "+target+" ")
				}
				if got, want := e.h.relayed.Load(), int64(1+2*round); got != want {
					t.Errorf("round %d: the relay served %d requests, want %d", round, got, want)
				}
				if got := e.handoffs.Load(); got != int64(round) {
					t.Errorf("round %d: %d handoffs, want %d", round, got, round)
				}
			}
		})
	}
}

// Requests pipelined behind a handed-off one, which net/http read ahead,
// come back with the connection and are relayed in order.
func TestTakeBackKeepsPipelinedRequests(t *testing.T) {
	e, _ := startFramed(t)
	c := e.dial(t)
	c.send(t, "POST /p1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"+
		get("/p2", "x")+get("/p3?q=3", "x"))
	c.readServed(t,
		served{"fallback", "fallback POST /p1 abc"},
		served{"upstream", "up GET /p2 "},
		served{"upstream", "up GET /p3?q=3 "},
	)
	if n := e.h.relayed.Load(); n != 2 {
		t.Errorf("the relay served %d requests, want 2", n)
	}
}

// Where net/http would not keep the connection as it is, it stays with
// net/http (which serves the next request) or closes; so does a connection
// whose request the handler refused (ServeRelay false: it would likely
// refuse the next ones too, and each handover costs).
func TestKeepsConnectionWithFallback(t *testing.T) {
	chunked := func(target string) string {
		return "POST " + target + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
	}
	cases := []struct {
		name, request, want string
		closes              bool // net/http closes the connection after the answer
	}{
		{name: "answer without a length", request: chunked("/c?chunked=1"), want: "fallback POST /c?chunked=1 abc"},
		{name: "Transfer-Encoding with the length", request: chunked("/c?te=1"), want: "fallback POST /c?te=1 abc"},
		{name: "body not read", request: chunked("/c?unread=1"), want: "fallback POST /c?unread=1 "},
		{name: "HTTP/1.0", request: "GET /old HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", want: "fallback GET /old "},
		{name: "Upgrade not taken", request: "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", want: "fallback GET /ws "},
		{name: "handler refused", request: "GET /refused HTTP/1.1\r\nHost: x\r\nX-Refuse: yes\r\n\r\n", want: "fallback GET /refused "},
		{name: "answer says close", request: chunked("/c?close=1"), want: "fallback POST /c?close=1 abc", closes: true},
		{name: "answer shorter than its length", request: chunked("/c?short=1"), want: "fallback POST /c?short=1 ab", closes: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := startFramed(t)
			c := e.dial(t)
			c.send(t, tc.request)
			if tc.closes {
				// The answer is cut or says close: read what came, then the end.
				_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
				b, err := io.ReadAll(c.br)
				if err != nil {
					t.Errorf("the connection did not close after the answer: %v", err)
				}
				if !strings.Contains(string(b), tc.want) {
					t.Errorf("answer %q does not carry %q", b, tc.want)
				}
				if n := e.h.relayed.Load(); n != 0 {
					t.Errorf("the relay served %d requests", n)
				}
				return
			}
			res, body := c.read(t, "GET")
			wantServedBy(t, res, body, "fallback", tc.want)
			c.send(t, get("/next", "x"))
			res, body = c.read(t, "GET")
			wantServedBy(t, res, body, "fallback", "fallback GET /next ")
			if n := e.h.relayed.Load(); n != 0 {
				t.Errorf("the relay served %d requests, want none", n)
			}
		})
	}
}

// A connection taken back is the relay's to shut down: idle, it is closed
// at once and Shutdown returns.
func TestShutdownClosesTakenBackConnection(t *testing.T) {
	e, _ := startFramed(t)
	c := e.dial(t)
	c.send(t, "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n")
	res, body := c.read(t, "POST")
	wantServedBy(t, res, body, "fallback", "fallback POST /chunked a")
	c.send(t, get("/relayed", "x"))
	res, body = c.read(t, "GET")
	wantServedBy(t, res, body, "upstream", "up GET /relayed ")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %s with one idle connection", d)
	}
	if err := c.closedWithin(5 * time.Second); err != nil {
		t.Error(err)
	}
}
