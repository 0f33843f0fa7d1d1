package gateway

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
	"github.com/flint-dev/flint/internal/testutil"
	"github.com/flint-dev/flint/internal/wire"
)

// A ready endpoint that refuses connections for a while, as a Service's
// ClusterIP does until the cluster's service proxy has programmed it, gets
// the request once it listens: over the retry budget a connection refusal
// waits in the capacity hold instead of answering 502 at once.
func TestUnreachableReplicaOverBudgetWaitsForIt(t *testing.T) {
	addr := testutil.FreeAddr(t)
	p := platformtest.New(testAgent(0))
	p.SetReady(echoKey, platform.Endpoint{Addr: addr, Replica: "svc"})
	_, gsrv := startGateway(t, p, nil, func(c *Config) {
		c.FullBackoff, c.CapacityHold = 20*time.Millisecond, 10*time.Second
		c.Retry = RetryBudget{PerRequest: 1, Fraction: 1, Min: 10}
	})
	go func() {
		time.Sleep(500 * time.Millisecond) // 25 backoffs: far over the budget of 1
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("listen on %s: %v", addr, err)
			return
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "served") })}
		t.Cleanup(func() { srv.Close() })
		go srv.Serve(ln)
	}()
	res, err := client(t).Post(gsrv.URL+"/v1/agents/default/echo/", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(body) != "served" {
		t.Errorf("client got %d %s, want 200 once the replica listens", res.StatusCode, body)
	}
}

// A replica that never becomes reachable: when the hold ends the client
// hears that it could not be reached (502), not that replicas are busy.
func TestUnreachableReplicaAfterTheHoldIs502(t *testing.T) {
	p := platformtest.New(testAgent(0))
	p.SetReady(echoKey, platform.Endpoint{Addr: testutil.FreeAddr(t), Replica: "gone"})
	_, gsrv := startGateway(t, p, nil, func(c *Config) {
		c.FullBackoff, c.CapacityHold = 20*time.Millisecond, 300*time.Millisecond
		c.Retry = RetryBudget{PerRequest: 1, Fraction: 1, Min: 10}
	})
	start := time.Now()
	res, err := client(t).Get(gsrv.URL + "/v1/agents/default/echo/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var e wire.ErrorBody
	if err := json.Unmarshal(body, &e); err != nil || res.StatusCode != http.StatusBadGateway || e.Reason != "UpstreamError" {
		t.Errorf("client got %d %s, want 502 UpstreamError", res.StatusCode, body)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("answered after %s, before the 300ms hold ended", d)
	}
}
