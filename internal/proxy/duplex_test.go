package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/bodyrate"
	"github.com/flint-dev/flint/internal/testutil"
)

// TestUnreadBodyKeepsConnectionUsable: a POST the agent never read (it
// could not be reached) is answered, and the next request on the same
// kept-alive connection is served. Before the sidecar closed the body
// itself, the server drained it after the handler, restarted its
// background read on reaching the end, and the next request's read
// panicked with "invalid concurrent Body.Read call" (golang/go#68560),
// closing the connection without an answer.
func TestUnreadBodyKeepsConnectionUsable(t *testing.T) {
	agent := upstream(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	cfg := testConfig(hostOf(agent))
	cfg.ProbeRecheckInterval = time.Hour // stays "ready" after the agent goes
	s := startSidecar(t, cfg, true)
	agent.Close()

	conn, err := net.Dial("tcp", s.ServingAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	for i := range 20 {
		body := strings.Repeat("b", 100)
		if _, err := conn.Write([]byte("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n" + body)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on the kept-alive connection got no answer: %v", i, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadGateway {
			t.Fatalf("request %d: status %d, want 502", i, res.StatusCode)
		}
	}
}

// TestSlowBodyGets408: a client trickling its body is answered 408 after
// the grace period, and its slot comes back.
func TestSlowBodyGets408(t *testing.T) {
	agent := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	cfg := testConfig(hostOf(agent))
	cfg.Concurrency = 1
	cfg.BodyRate = bodyrate.Config{MinRate: 100, Grace: 300 * time.Millisecond}
	s := startSidecar(t, cfg, true)
	conn, err := net.Dial("tcp", s.ServingAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
	start := time.Now()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "body-too-slow") || !res.Close {
		t.Fatalf("got %d %q (close %v), want 408 body-too-slow and the connection closed", res.StatusCode, body, res.Close)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("answered after %s", d)
	}
	testutil.WaitFor(t, "the slot back", func() bool { return s.Stats().InFlight == 0 })
}
