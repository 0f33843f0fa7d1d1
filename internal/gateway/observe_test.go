package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
	"github.com/flint-dev/flint/internal/ui"
	"github.com/flint-dev/flint/internal/wire"
)

type fixedDecisions []wire.Decision

func (f fixedDecisions) Decisions(platform.AgentKey) []wire.Decision { return f }

// blockingAgent holds every request until release is closed.
func blockingAgent(t *testing.T) (srv *httptest.Server, arrived chan struct{}, release chan struct{}) {
	arrived, release = make(chan struct{}, 16), make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "done")
	}))
	t.Cleanup(srv.Close)
	return srv, arrived, release
}

func getBody(t *testing.T, url string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestDescribeAndListShowLoadAndDecisions: with a request in flight, the
// listing, the describe API and the in-flight metric all count it, and
// describe carries the autoscaler's decisions.
func TestDescribeAndListShowLoadAndDecisions(t *testing.T) {
	agent, arrived, release := blockingAgent(t)
	p := platformtest.New(testAgent(0))
	ep := startSidecar(t, agent, 0, "echo-0")
	p.SetReady(echoKey, ep)
	gw, srv := startGateway(t, p, nil, nil)
	now := time.Now()
	gw.SetDecisionSource(fixedDecisions{
		{Time: now, Current: 0, Desired: 1, Reason: wire.ReasonPoke},
		{Time: now, Current: 1, Desired: 2, Ready: 1, Reason: wire.ReasonPanic, Panic: true, Demand: 3},
	})

	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err := background().Get(srv.URL + "/v1/agents/default/echo/slow")
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}()
	<-arrived
	defer func() { close(release); <-done }()

	code, body := getBody(t, srv.URL+"/v1/agents")
	var list []AgentSummary
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) != 1 {
		t.Fatalf("/v1/agents: %d %s", code, body)
	}
	if s := list[0]; s.InFlight != 1 || s.DesiredReplicas == nil || *s.DesiredReplicas != 2 || s.RequestsTotal != 1 {
		t.Fatalf("summary: %+v", s)
	}

	code, body = getBody(t, srv.URL+DescribePath+"default/echo")
	var d AgentDetail
	if code != 200 || json.Unmarshal([]byte(body), &d) != nil {
		t.Fatalf("describe: %d %s", code, body)
	}
	if len(d.Endpoints) != 1 || d.Endpoints[0].Replica != "echo-0" || d.Endpoints[0].InFlight != 1 ||
		len(d.Decisions) != 2 || d.Decisions[1].Reason != "panic" || !d.Decisions[1].Panic || d.Spec.Container.Port != 8080 {
		t.Fatalf("detail: %+v", d)
	}
	if code, body = getBody(t, srv.URL+DescribePath+"default/nope"); code != 404 || !strings.Contains(body, "AgentNotFound") {
		t.Fatalf("unknown agent: %d %s", code, body)
	}

	_, metrics := getBody(t, srv.URL+"/metrics")
	if !strings.Contains(metrics, `flint_gateway_in_flight_requests{agent="echo",namespace="default"} 1`) {
		t.Fatalf("no in-flight series:\n%s", metrics)
	}

	// The dashboard's state sees the same.
	_, body = getBody(t, srv.URL+ui.StatePath)
	var st ui.State
	if err := json.Unmarshal([]byte(body), &st); err != nil || len(st.Agents) != 1 {
		t.Fatalf("dashboard state: %v %s", err, body)
	}
	if a := st.Agents[0]; a.InFlight != 1 || a.Desired != 2 || !a.Panic || a.Phase != "panic" || len(a.Decisions) != 2 || a.Decisions[1].To != 2 {
		t.Fatalf("dashboard agent: %+v", a)
	}
}

// TestDashboardNeedsCredentialsOnlyForData: with authentication on, the
// page loads, but its state and describe need a key like the listing does.
func TestDashboardNeedsCredentialsOnlyForData(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keys, []byte("k-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := platformtest.New(testAgent(0))
	_, srv := startGateway(t, p, nil, func(c *Config) { c.Auth.APIKeysFile = keys })

	if code, body := getBody(t, srv.URL+"/ui/"); code != 200 || !strings.Contains(body, "Flint dashboard") {
		t.Fatalf("/ui/: %d", code)
	}
	for _, path := range []string{ui.StatePath, DescribePath + "default/echo"} {
		if code, _ := getBody(t, srv.URL+path); code != http.StatusUnauthorized {
			t.Errorf("%s without a key: %d, want 401", path, code)
		}
		if code, body := getBody(t, srv.URL+path, "Authorization", "Bearer k-123"); code != 200 {
			t.Errorf("%s with a key: %d %s", path, code, body)
		}
	}
}
