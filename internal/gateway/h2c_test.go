package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestH2CPriorKnowledge: a client speaking HTTP/2 without TLS from the
// first byte (gRPC, curl --http2-prior-knowledge) is served. Before, the
// gateway closed such connections without an answer.
func TestH2CPriorKnowledge(t *testing.T) {
	hits, _, p, _ := countingAgent(t)
	_, gw := startGateway(t, p, nil, nil)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(gw.URL + "/v1/agents/default/echo/x")
	if err != nil {
		t.Fatalf("HTTP/2 with prior knowledge: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.ProtoMajor != 2 || res.StatusCode != 200 || string(body) != "ok" || hits.Load() != 1 {
		t.Fatalf("got %s %d %q, agent hits %d", res.Proto, res.StatusCode, body, hits.Load())
	}
}

// TestH2CUpgradeIsServedOverHTTP1: the deprecated Upgrade: h2c is ignored,
// as HTTP allows: the answer comes over HTTP/1.1 and the agent sees no
// upgrade request.
func TestH2CUpgradeIsServedOverHTTP1(t *testing.T) {
	hits, _, p, last := countingAgent(t)
	_, gw := startGateway(t, p, nil, nil)
	conn, err := net.Dial("tcp", gw.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /v1/agents/default/echo/x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "ok" || hits.Load() != 1 {
		t.Fatalf("got %d %q, agent hits %d", res.StatusCode, body, hits.Load())
	}
	if u := (*last).Get("Upgrade"); u != "" || (*last).Get("Http2-Settings") != "" {
		t.Errorf("the agent saw Upgrade %q", u)
	}
}
