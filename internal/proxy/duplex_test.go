package proxy

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
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
