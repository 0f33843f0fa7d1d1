package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
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
	addr := freeAddr(t)
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
		w.Header().Set("X-Flint-Rejected", "capacity")
		w.Header().Set("X-Flint-Cold-Start-Wait", "1h")
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
		if strings.HasPrefix(k, "X-Flint-") {
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
