package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/flint-dev/flint/internal/testutil"
)

// These tests restart `flint gateway` (static platform) under steady load
// while the replicas — `flint proxy` processes in front of agents — keep
// running, as they do when a gateway pod is replaced on Kubernetes.
//
// What a client can be promised, and what is asserted:
//   - every request the gateway accepted before SIGTERM is answered, and
//     answered 200: the gateway stops listening, finishes what it has and
//     exits 0;
//   - the gateway never answers an error: no request gets a non-200 status,
//     and no request that reached an agent fails;
//   - with a single gateway, connections made while no gateway listens are
//     refused (the client never sent those requests; the agent never saw
//     them); they are counted separately. A request written on a keep-alive
//     connection the old gateway closed as idle at that instant (the
//     HTTP/1.1 keep-alive race, RFC 9112 §9.3.1), or on a connection still
//     in its listen queue when it closed the listener, fails with a reset
//     or EOF; the agents' record shows those were never delivered either;
//   - once the new gateway listens, every request succeeds;
//   - with two gateways and a client that moves to the other one when a
//     connection is refused (or, for a request it marks idempotent, reset
//     before any answer), nothing fails at all, and no request runs twice.

// loadIDHeader carries each load request's id to the agent, which records it.
const loadIDHeader = "X-Load-Id"

// recordingAgent is an agent (served by the test) that remembers every
// request id it saw and which ones it is serving right now: the ground
// truth of what was delivered.
type recordingAgent struct {
	srv      *httptest.Server
	seen     sync.Map // id -> struct{}
	inFlight sync.Map // id -> struct{}
	dupes    atomic.Int64
}

func startRecordingAgent(t *testing.T) *recordingAgent {
	t.Helper()
	a := &recordingAgent{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			io.WriteString(w, "ok\n")
			return
		}
		id := r.Header.Get(loadIDHeader)
		if id != "" {
			if _, dup := a.seen.LoadOrStore(id, struct{}{}); dup {
				a.dupes.Add(1)
			}
			a.inFlight.Store(id, struct{}{})
			defer a.inFlight.Delete(id)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, "ok\n")
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *recordingAgent) saw(id string) bool { _, ok := a.seen.Load(id); return ok }

// inFlightIDs are the requests the agents are serving now.
func inFlightIDs(agents []*recordingAgent) []string {
	var ids []string
	for _, a := range agents {
		a.inFlight.Range(func(k, _ any) bool { ids = append(ids, k.(string)); return true })
	}
	return ids
}

// startReplicaSidecar runs `flint proxy` in front of the agent at agentAddr
// and returns the -replica value for `flint gateway`.
func startReplicaSidecar(t *testing.T, key, agentAddr string) string {
	t.Helper()
	serving, admin := testutil.FreeAddr(t), testutil.FreeAddr(t)
	start(t, repoRoot, flintBin, "proxy", "-serving-addr", serving, "-admin-addr", admin,
		"-upstream", agentAddr, "-concurrency", "100", "-drain-delay", "1s", "-probe-path", "/healthz")
	return fmt.Sprintf("%s=%s@%s", key, serving, admin)
}

// startStaticGateway runs `flint gateway` on addr in front of replicas and
// waits until it listens and has seen every replica ready. It returns the
// process and when it started listening.
func startStaticGateway(t *testing.T, file, addr string, replicas []string, extra ...string) (*proc, time.Time) {
	t.Helper()
	// Clients here reach the gateways by a Service-like name, "gateway",
	// which a gateway on loopback accepts only when told (DNS-rebinding check).
	args := []string{"gateway", "-f", file, "-addr", addr, "-check-interval", "100ms", "-allowed-hosts", "gateway"}
	for _, r := range replicas {
		args = append(args, "-replica", r)
	}
	gw := start(t, repoRoot, flintBin, append(args, extra...)...)
	gw.waitOutput(t, "listening", 20*time.Second)
	listening := time.Now()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(gw.out.String(), "ready=true") < len(replicas) {
		if time.Now().After(deadline) {
			t.Fatalf("replicas never became ready:\n%s", gw.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return gw, listening
}

// outcome is one load request as the client saw it.
type outcome struct {
	id         string
	start, end time.Time
	status     int // 0 when err is set
	err        error
	refused    bool // the connection was refused: the request never left
	reused     bool // sent on a keep-alive connection
	via        int  // the gateway that answered (fallback client), else 0
}

// restartLoad sends POSTs (not idempotent, so Go's transport does not
// silently retry them) from workers until stopped, recording each outcome.
type restartLoad struct {
	mu       sync.Mutex
	outcomes []outcome
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startRestartLoad(c *http.Client, url string, workers int, header http.Header) *restartLoad {
	l := &restartLoad{stop: make(chan struct{})}
	for w := range workers {
		l.wg.Go(func() {
			for seq := 0; ; seq++ {
				select {
				case <-l.stop:
					return
				default:
				}
				o := outcome{id: fmt.Sprintf("w%d-%d", w, seq), start: time.Now()}
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"task":"work"}`))
				for k, v := range header {
					req.Header[k] = v
				}
				req.Header.Set(loadIDHeader, o.id)
				if k := req.Header.Get("Idempotency-Key"); k != "" {
					req.Header.Set("Idempotency-Key", o.id)
				}
				var via viaRecorder
				ctx := context.WithValue(req.Context(), viaKey{}, &via)
				ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { o.reused = i.Reused }})
				res, err := c.Do(req.WithContext(ctx))
				if err == nil {
					_, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					o.status = res.StatusCode
					if err != nil {
						o.status = 0
					}
				}
				o.end, o.err, o.via = time.Now(), err, int(via.Load())
				o.refused = err != nil && isRefused(err)
				l.mu.Lock()
				l.outcomes = append(l.outcomes, o)
				l.mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond) // a client backs off a failed connection
				}
			}
		})
	}
	return l
}

func (l *restartLoad) finish() []outcome {
	close(l.stop)
	l.wg.Wait()
	return l.outcomes
}

func isRefused(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &op) && op.Op == "dial"
}

// fallbackTransport is the smallest client-side failover: a list of
// gateway replicas, tried in order, moving on when a connection is refused
// — the one failure that proves the request was never sent — and, for a
// request that carries an Idempotency-Key, when the connection is reset or
// closed before any answer (RFC 9112 §9.3.1 lets a client retry those).
type fallbackTransport struct {
	base  *http.Transport
	addrs []string
	last  atomic.Int32 // the gateway (1-based) that answered last
}

type viaKey struct{}

// viaRecorder notes which gateway (1-based) answered.
type viaRecorder = atomic.Int32

func (f *fallbackTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var err error
	for i, addr := range f.addrs {
		out := req.Clone(req.Context())
		out.URL.Host = addr
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				if i > 0 {
					return nil, err
				}
			} else if out.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		var res *http.Response
		res, err = f.base.RoundTrip(out)
		if err == nil {
			f.last.Store(int32(i + 1))
			if v, ok := req.Context().Value(viaKey{}).(*viaRecorder); ok {
				v.Store(int32(i + 1))
			}
			return res, nil
		}
		if !isRefused(err) && !(req.Header.Get("Idempotency-Key") != "" && isCutBeforeAnswer(err)) {
			return nil, err
		}
	}
	return nil, err
}

func isCutBeforeAnswer(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// loadTally sums outcomes up.
type loadTally struct {
	ok, refused, status, otherErr int
	otherErrReused                int // of otherErr, on a keep-alive connection
	delivered                     int // failed requests the agents saw: accepted and lost
	firstRefused, lastRefused     time.Time
	errs                          map[string]int
}

func tally(outcomes []outcome, agents []*recordingAgent) loadTally {
	t := loadTally{errs: map[string]int{}}
	for _, o := range outcomes {
		switch {
		case o.err == nil && o.status == http.StatusOK:
			t.ok++
			continue
		case o.refused:
			t.refused++
			if t.firstRefused.IsZero() || o.start.Before(t.firstRefused) {
				t.firstRefused = o.start
			}
			if o.end.After(t.lastRefused) {
				t.lastRefused = o.end
			}
		case o.err != nil:
			t.otherErr++
			if o.reused {
				t.otherErrReused++
			}
			t.errs[shortErr(o.err)]++
		default:
			t.status++
			t.errs[fmt.Sprintf("status %d", o.status)]++
		}
		for _, a := range agents {
			if a.saw(o.id) {
				t.delivered++
			}
		}
	}
	return t
}

// shortErr drops the URL and addresses from an error, to group them.
func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// restartSetup is two replicas (recording agents behind `flint proxy`)
// and the Agent file a static gateway serves them from.
func restartSetup(t *testing.T) (file string, replicas []string, agents []*recordingAgent) {
	t.Helper()
	file = writeAgents(t, echoAgent("echo", "  concurrency: 100"))
	for range 2 {
		a := startRecordingAgent(t)
		agents = append(agents, a)
		replicas = append(replicas, startReplicaSidecar(t, "default/echo", a.srv.Listener.Addr().String()))
	}
	return file, replicas, agents
}

// restartRun is one gateway restart under load, as the client saw it.
type restartRun struct {
	accepted  []string  // in flight at the agents at SIGTERM: the old gateway had accepted them
	code      int       // the old gateway's exit code
	sigterm   time.Time //
	exited    time.Time // the old gateway's exit
	listening time.Time // its successor's first listen
	outcomes  []outcome
}

// restartUnderLoad lets load run for a second, sends SIGTERM to old,
// waits for its exit, starts its successor with start (which returns
// when it listens), lets the load run 1.5 s more and stops it.
func restartUnderLoad(t *testing.T, load *restartLoad, agents []*recordingAgent, old *proc, start func() time.Time) restartRun {
	t.Helper()
	time.Sleep(time.Second)
	var r restartRun
	r.accepted = inFlightIDs(agents)
	r.sigterm = time.Now()
	old.signal(syscall.SIGTERM)
	r.code = old.wait(t, 30*time.Second)
	r.exited = time.Now()
	r.listening = start()
	time.Sleep(1500 * time.Millisecond)
	r.outcomes = load.finish()
	if r.code != 0 {
		t.Errorf("gateway exited %d after SIGTERM, want 0 (graceful shutdown)", r.code)
	}
	if len(r.accepted) == 0 {
		t.Fatal("no request was in flight at SIGTERM: the test proves nothing")
	}
	return r
}

// checkNothingLost asserts every request succeeded, exactly once at an
// agent, through a restart behind how (the client's way to the gateways).
func checkNothingLost(t *testing.T, r restartRun, agents []*recordingAgent, how string) loadTally {
	t.Helper()
	tl := tally(r.outcomes, agents)
	if tl.ok != len(r.outcomes) {
		t.Errorf("%d of %d requests failed through a gateway restart behind %s: %v", len(r.outcomes)-tl.ok, len(r.outcomes), how, tl.errs)
	}
	if tl.ok < 100 {
		t.Fatalf("only %d requests succeeded: the load did not run", tl.ok)
	}
	if n := countDupes(agents); n > 0 {
		t.Errorf("%d requests reached an agent twice", n)
	}
	return tl
}

// TestFaultGatewayRestartUnderLoad: the only gateway gets SIGTERM under
// load, drains and exits; a new one starts on the same address. Nothing
// the gateway accepted fails; while none listens, connections are refused.
func TestFaultGatewayRestartUnderLoad(t *testing.T) {
	const workers = 16
	file, replicas, agents := restartSetup(t)
	addr := testutil.FreeAddr(t)
	old, _ := startStaticGateway(t, file, addr, replicas)

	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	defer c.CloseIdleConnections()
	load := startRestartLoad(c, "http://"+addr+"/v1/agents/default/echo/work?sleep=50ms", workers, nil)
	// Requests the agents are serving at SIGTERM were accepted by the
	// gateway: each must complete.
	r := restartUnderLoad(t, load, agents, old, func() time.Time {
		_, listening := startStaticGateway(t, file, addr, replicas)
		return listening
	})
	outcomes, accepted, sigterm, exited, listening := r.outcomes, r.accepted, r.sigterm, r.exited, r.listening
	drained, gap := exited.Sub(sigterm), listening.Sub(sigterm)
	byID := map[string]outcome{}
	for _, o := range outcomes {
		byID[o.id] = o
	}
	for _, id := range accepted {
		if o := byID[id]; o.err != nil || o.status != 200 {
			t.Errorf("request %s, in flight at SIGTERM, ended with %d %v", id, o.status, o.err)
		}
	}
	tl := tally(outcomes, agents)
	if tl.status > 0 || tl.delivered > 0 {
		t.Errorf("%d requests got an error status and %d failed after reaching an agent: %v", tl.status, tl.delivered, tl.errs)
	}
	var firstOKAfter time.Time
	for _, o := range outcomes {
		if o.start.After(listening) && (o.err != nil || o.status != 200) {
			t.Errorf("request %s sent after the new gateway listened failed: %d %v", o.id, o.status, o.err)
		}
		if o.status == 200 && o.start.After(exited) && (firstOKAfter.IsZero() || o.end.Before(firstOKAfter)) {
			firstOKAfter = o.end
		}
	}
	if tl.ok < 100 {
		t.Fatalf("only %d requests succeeded: the load did not run", tl.ok)
	}
	if n := countDupes(agents); n > 0 {
		t.Errorf("%d requests reached an agent twice", n)
	}
	t.Logf("%d requests: %d ok, %d refused while no gateway listened, %d reset before the gateway read them (%d on a keep-alive connection it closed as idle, %d on a connection still in its listen queue) %v; none of these reached an agent; 0 failed after being accepted",
		len(outcomes), tl.ok, tl.refused, tl.otherErr, tl.otherErrReused, tl.otherErr-tl.otherErrReused, tl.errs)
	t.Logf("%d in flight at SIGTERM all completed; old gateway drained and exited in %s; new one listened %s after SIGTERM; first success through it %s after SIGTERM",
		len(accepted), drained.Round(time.Millisecond), gap.Round(time.Millisecond), firstOKAfter.Sub(sigterm).Round(time.Millisecond))
}

func countDupes(agents []*recordingAgent) int64 {
	var n int64
	for _, a := range agents {
		n += a.dupes.Load()
	}
	return n
}

// TestFaultGatewayRestartBehindFallbackLosesNothing: two gateways in front
// of the same replicas, and a client that moves to the other gateway when
// a connection is refused. One gateway restarts under load: no request
// fails and none reaches an agent twice.
//
// The requests carry Idempotency-Key, so the client may, as RFC 9112
// §9.3.1 allows, re-send one whose connection the shutting-down gateway
// reset or closed before reading it (a keep-alive connection it closed as
// idle, or one still in its listen queue); without the key those rare
// races surface as resets (see TestFaultGatewayRestartUnderLoad). The
// agents' record shows each request ran exactly once.
func TestFaultGatewayRestartBehindFallbackLosesNothing(t *testing.T) {
	const workers = 16
	file, replicas, agents := restartSetup(t)
	addrA, addrB := testutil.FreeAddr(t), testutil.FreeAddr(t)
	a, _ := startStaticGateway(t, file, addrA, replicas)
	startStaticGateway(t, file, addrB, replicas)

	base := &http.Transport{MaxIdleConnsPerHost: 100}
	defer base.CloseIdleConnections()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &fallbackTransport{base: base, addrs: []string{addrA, addrB}}}
	load := startRestartLoad(c, "http://gateway/v1/agents/default/echo/work?sleep=50ms", workers,
		http.Header{"Idempotency-Key": {"set-per-request"}})
	r := restartUnderLoad(t, load, agents, a, func() time.Time {
		_, listening := startStaticGateway(t, file, addrA, replicas)
		return listening
	})
	checkNothingLost(t, r, agents, "a fallback client")
	outcomes, listening, sigterm, drained := r.outcomes, r.listening, r.sigterm, r.exited.Sub(r.sigterm)
	var viaB, viaNewA int
	for _, o := range outcomes {
		if o.via == 2 {
			viaB++
		}
		if o.via == 1 && o.start.After(listening) {
			viaNewA++
		}
	}
	if viaB == 0 || viaNewA == 0 {
		t.Errorf("%d requests went to the second gateway during the restart and %d to the restarted one: want both", viaB, viaNewA)
	}
	t.Logf("%d requests, 0 failed, 0 duplicated: %d through the second gateway while the first restarted (drained and exited in %s, back %s after SIGTERM), %d through the restarted one",
		len(outcomes), viaB, drained.Round(time.Millisecond), listening.Sub(sigterm).Round(time.Millisecond), viaNewA)
}

// TestMCPSessionSurvivesGatewayRestartE2E: gateways sharing
// -session-key-file route an MCP session to the replica that owns it
// through a restart: calls keep their replica and session while the first
// gateway is down (on the second) and after it is back.
func TestMCPSessionSurvivesGatewayRestartE2E(t *testing.T) {
	bin := exampleBin(t, "mcp-go")
	file := writeAgents(t, mcpAgentYAML("mcp-go", bin, "mcp", ""))
	keyFile := filepath.Join(t.TempDir(), "session-key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("s", 48)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var replicas []string
	for range 2 {
		agentAddr := testutil.FreeAddr(t)
		_, port, _ := strings.Cut(agentAddr, ":")
		startEnv(t, repoRoot, []string{"PORT=" + port}, bin)
		replicas = append(replicas, startReplicaSidecar(t, "default/mcp-go", agentAddr))
	}
	addrA, addrB := testutil.FreeAddr(t), testutil.FreeAddr(t)
	a, _ := startStaticGateway(t, file, addrA, replicas, "-session-key-file", keyFile)
	startStaticGateway(t, file, addrB, replicas, "-session-key-file", keyFile)

	base := &http.Transport{}
	defer base.CloseIdleConnections()
	fb := &fallbackTransport{base: base, addrs: []string{addrA, addrB}}
	hc := &http.Client{Transport: fb}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: "http://gateway/v1/agents/default/mcp-go/mcp", HTTPClient: hc, MaxRetries: 5},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	whoami := func(when string) map[string]any {
		t.Helper()
		got := callTool(t, cs, &mcp.CallToolParams{Name: "whoami"})
		if got["replica"] == nil || got["session"] == nil {
			t.Fatalf("%s: whoami gave %v", when, got)
		}
		return got
	}
	first := whoami("before the restart")
	same := func(when string, via int32) {
		t.Helper()
		for range 5 {
			if got := whoami(when); got["replica"] != first["replica"] || got["session"] != first["session"] {
				t.Fatalf("%s: the session moved: %v, first %v", when, got, first)
			}
			if fb.last.Load() != via {
				t.Fatalf("%s: the call went through gateway %d, want %d", when, fb.last.Load(), via)
			}
		}
	}
	same("before the restart", 1)

	sigterm := time.Now()
	a.signal(syscall.SIGTERM)
	if code := a.wait(t, 30*time.Second); code != 0 {
		t.Errorf("gateway with an open MCP session exited %d after SIGTERM", code)
	}
	stopped := time.Since(sigterm)
	same("while the first gateway is down", 2)
	startStaticGateway(t, file, addrA, replicas, "-session-key-file", keyFile)
	same("after the first gateway restarted", 1)
	t.Logf("MCP session kept its replica through a gateway restart (the gateway with its session stream open stopped in %s)", stopped.Round(time.Millisecond))
}
