package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestContentLengthWithChunkedClosesConnection: RFC 9112 §6.1 — after a
// request carrying both Content-Length and Transfer-Encoding: chunked the
// server must close the connection, so a request pipelined behind it (a
// smuggling attempt, if a front proxy framed it by Content-Length) is
// never served.
func TestContentLengthWithChunkedClosesConnection(t *testing.T) {
	hits, _, p, _ := countingAgent(t)
	_, gw := startGateway(t, p, nil, nil)
	conn, err := net.Dial("tcp", gw.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "POST /v1/agents/default/echo/a HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"4\r\nbody\r\n0\r\n\r\n"+
		"GET /v1/agents/default/echo/smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if !res.Close {
		t.Errorf("the answer to a Content-Length + chunked request keeps the connection open")
	}
	if res2, err := http.ReadResponse(br, nil); err == nil {
		res2.Body.Close()
		t.Errorf("the request pipelined behind it was served: %d", res2.StatusCode)
	}
	if hits.Load() != 1 {
		t.Errorf("the agent got %d requests, want 1", hits.Load())
	}
}
