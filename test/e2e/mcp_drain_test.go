package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/flint-dev/flint/internal/testutil"
	"github.com/flint-dev/flint/internal/wire"
)

// mcpReplica is one replica run by hand: the Go SDK example behind its own
// `flint proxy`.
type mcpReplica struct {
	agent, sidecar *proc
	serving, admin string
}

func startMCPReplica(t *testing.T, bin string, sidecarArgs ...string) *mcpReplica {
	t.Helper()
	agentAddr := testutil.FreeAddr(t)
	host, port, _ := net.SplitHostPort(agentAddr)
	r := &mcpReplica{serving: testutil.FreeAddr(t), admin: testutil.FreeAddr(t)}
	r.agent = startEnv(t, repoRoot, []string{"HOST=" + host, "PORT=" + port}, bin)
	args := append([]string{"proxy", "-serving-addr", r.serving, "-admin-addr", r.admin,
		"-upstream", agentAddr, "-probe-path", "/healthz"}, sidecarArgs...)
	r.sidecar = start(t, repoRoot, flintBin, args...)
	return r
}

// stats reads the sidecar's load on its admin port.
func (r *mcpReplica) stats(t *testing.T) wire.Stats {
	t.Helper()
	var st wire.Stats
	res, err := http.Get("http://" + r.admin + wire.PathStats)
	if err != nil {
		return st
	}
	defer res.Body.Close()
	_ = json.NewDecoder(res.Body).Decode(&st)
	return st
}

func whoamiPID(cs *mcp.ClientSession) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		return 0, err
	}
	m, _ := res.StructuredContent.(map[string]any)
	pid, _ := m["pid"].(float64)
	if res.IsError || pid == 0 {
		return 0, fmt.Errorf("whoami gave %+v", res)
	}
	return int(pid), nil
}

func awaitCond(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An MCP client of the session era (official go-sdk, its standalone GET
// stream open) keeps working when the replica holding its session drains:
// two replicas of the Go SDK example, each behind `flint proxy`, behind
// `flint gateway`. The session's sidecar gets SIGTERM (the kubelet's stop,
// its preStop having started the drain). The gateway checks readiness only
// hourly here, so that, as on Kubernetes, where a terminating pod stays in
// the gateway's draining list until it is gone, the gateway keeps routing
// the session to it: only the sidecar can end the open stream. It does so
// after its drain delay and -event-stream-grace, and exits 0 well inside
// its 60s drain timeout (before, the stream held it there: exit only at the
// deadline, the client cut). The client's reconnecting GET finds the
// session gone (404, ErrSessionMissing); a new session, on the replica
// that stays, works.
func TestMCPClientMovesOffADrainingReplica(t *testing.T) {
	bin := exampleBin(t, "mcp-go")
	const drainDelay, streamGrace, drainTimeout = time.Second, 500 * time.Millisecond, time.Minute
	sidecarArgs := []string{"-drain-delay", drainDelay.String(), "-event-stream-grace", streamGrace.String(),
		"-drain-timeout", drainTimeout.String()}
	replicas := []*mcpReplica{startMCPReplica(t, bin, sidecarArgs...), startMCPReplica(t, bin, sidecarArgs...)}
	var specs []string
	for _, r := range replicas {
		// The gateway checks readiness once at start, then hourly.
		awaitCond(t, "replica "+r.serving+" ready", 30*time.Second, func() bool { return r.stats(t).Ready })
		specs = append(specs, fmt.Sprintf("default/mcp-go=%s@%s", r.serving, r.admin))
	}
	file := writeAgents(t, mcpAgentYAML("mcp-go", bin, "mcp", ""))
	gw := testutil.FreeAddr(t)
	startStaticGateway(t, file, gw, specs, "-check-interval", "1h")
	url := "http://" + gw + "/v1/agents/default/mcp-go/mcp"

	cs := connectMCP(t, url, "2025-11-25", nil)
	pid, err := whoamiPID(cs)
	if err != nil {
		t.Fatal(err)
	}
	var on, other *mcpReplica
	for i, r := range replicas {
		if r.agent.cmd.Process.Pid == pid {
			on, other = r, replicas[1-i]
		}
	}
	if on == nil {
		t.Fatalf("whoami pid %d is neither replica's", pid)
	}
	// The session's standalone stream is open on its replica.
	awaitCond(t, "the session's GET stream to open", 10*time.Second, func() bool { return on.stats(t).InFlight == 1 })

	start := time.Now()
	on.sidecar.signal(syscall.SIGTERM)
	if code := on.sidecar.wait(t, 20*time.Second); code != 0 {
		t.Errorf("the draining sidecar exited %d, want 0 (a clean drain)", code)
	}
	stopped := time.Since(start)
	if bound := drainDelay + streamGrace + 5*time.Second; stopped > bound {
		t.Errorf("the sidecar took %s to drain with a session stream open, want within %s (drain timeout %s)", stopped, bound, drainTimeout)
	}
	if stopped < drainDelay {
		t.Errorf("the sidecar stopped %s after SIGTERM, before its %s drain delay", stopped, drainDelay)
	}

	// The old session is gone, and the client is told so.
	var oldErr error
	awaitCond(t, "the old session to report its replica gone", 15*time.Second, func() bool {
		_, oldErr = whoamiPID(cs)
		return oldErr != nil
	})
	if !errors.Is(oldErr, mcp.ErrSessionMissing) {
		t.Errorf("a call on the drained replica's session: %v, want ErrSessionMissing (re-initialize)", oldErr)
	}
	// The client starts a new session and carries on, on the replica that stays.
	fresh := connectMCP(t, url, "2025-11-25", nil)
	for i := range 5 {
		got, err := whoamiPID(fresh)
		if err != nil || got != other.agent.cmd.Process.Pid {
			t.Fatalf("call %d on the new session: pid %d, %v; want the remaining replica's %d", i+1, got, err, other.agent.cmd.Process.Pid)
		}
	}
	t.Logf("session on pid %d; its sidecar drained with the session stream open and exited %s after SIGTERM (drain delay %s, stream grace %s, drain timeout %s); old session: %v; new session on pid %d",
		pid, stopped.Round(time.Millisecond), drainDelay, streamGrace, drainTimeout, oldErr, other.agent.cmd.Process.Pid)
}
