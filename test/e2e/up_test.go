package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testutil"
)

// TestUpExamplesBannerURLAnswers runs `flint up examples/` as the README
// says (a directory argument, no -f) and follows the banner's Try: line.
func TestUpExamplesBannerURLAnswers(t *testing.T) {
	addr := testutil.FreeAddr(t)
	// run.sh keeps the agent's binary in $TMPDIR across runs of flint up;
	// the test's own is removed after it.
	p := startEnv(t, repoRoot, []string{"TMPDIR=" + t.TempDir()}, flintBin, "up", "examples/", "-addr", addr)
	p.waitOutput(t, "Try:", 60*time.Second)
	m := regexp.MustCompile(`Try:\n  curl (\S+)`).FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("the banner has no curl command:\n%s", p.out.String())
	}
	if want := "http://" + addr + "/v1/agents/default/echo/hello"; m[1] != want {
		t.Errorf("Try: curl %s, want %s", m[1], want)
	}
	c := newClient(t)
	c.Timeout = 3 * time.Minute
	// The start builds the echo agent (run.sh), which on a loaded
	// machine may outlast timeouts.coldStart (60s): the build goes on, and a
	// later request finds it done.
	res, body := get(t, c, m[1])
	for try := 0; try < 3 && res.StatusCode == http.StatusGatewayTimeout; try++ {
		res, body = get(t, c, m[1])
	}
	if res.StatusCode != 200 || !strings.Contains(body, `"/hello"`) {
		t.Fatalf("the banner's URL answered %d %s", res.StatusCode, body)
	}
}

// wrapperAgent is an agent whose command does not exec the server (as `go
// run` does not): a shell that starts echo in the background and waits.
func wrapperAgent(name string) string {
	return fmt.Sprintf(`apiVersion: flint.dev/v1alpha1
kind: Agent
metadata: {name: %s}
spec:
  container:
    command: [sh, -c, '%s & wait']
    port: 8080
    readinessProbe: {httpGet: {path: /healthz, port: 8080}}
`, name, echoBin)
}

// marked lists the processes whose environment holds marker: everything
// a flint up started with it set descends from it.
func marked(marker string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, []byte(marker)) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && strings.Contains(string(st), ") Z ") {
			continue // a zombie holds nothing
		}
		pids = append(pids, pid)
	}
	return pids
}

// waitNoneMarked waits until no process carries marker.
func waitNoneMarked(t *testing.T, marker string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		left := marked(marker)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				t.Errorf("still running %s after it: pid %d %q", within, pid, bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}))
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSIGKILLedUpLeavesNoDescendant: SIGKILL of `flint up` takes its agents'
// grandchildren along (issue 13, item 6).
func TestSIGKILLedUpLeavesNoDescendant(t *testing.T) {
	marker := fmt.Sprintf("FLINT_E2E_MARK=%d", time.Now().UnixNano())
	file := writeAgents(t, wrapperAgent("wrapped"))
	addr := testutil.FreeAddr(t)
	p := startEnv(t, repoRoot, []string{marker}, flintBin, "up", "-f", file, "-addr", addr)
	p.waitOutput(t, "Flint is up", 30*time.Second)
	c := newClient(t)
	if res, body := get(t, c, "http://"+addr+"/v1/agents/default/wrapped/x"); res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	if n := len(marked(marker)); n < 4 { // flint up, supervisor, sh, echo
		t.Fatalf("%d marked processes, want at least 4", n)
	}
	p.signal(syscall.SIGKILL)
	p.wait(t, 10*time.Second)
	waitNoneMarked(t, marker, 10*time.Second)
}

// TestUpExitsWithItsParent: a parent that runs `flint up` without exec
// (as `go run` does) and is killed takes flint up along, gracefully, and
// the port is free again.
func TestUpExitsWithItsParent(t *testing.T) {
	marker := fmt.Sprintf("FLINT_E2E_MARK=%d", time.Now().UnixNano())
	file := writeAgents(t, wrapperAgent("wrapped"))
	addr := testutil.FreeAddr(t)
	// `; true` keeps sh from exec'ing flint: it forks and waits, like go run.
	script := fmt.Sprintf("%q up -f %q -addr %s; true", flintBin, file, addr)
	p := startEnv(t, repoRoot, []string{marker}, "sh", "-c", script)
	p.waitOutput(t, "Flint is up", 30*time.Second)
	c := newClient(t)
	if res, body := get(t, c, "http://"+addr+"/v1/agents/default/wrapped/x"); res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL); err != nil { // the sh alone
		t.Fatal(err)
	}
	p.wait(t, 10*time.Second)
	waitNoneMarked(t, marker, 20*time.Second)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the gateway's address is still taken after its parent died: %v", err)
	}
	ln.Close()
}

// TestUpSecondInterruptStopsAtOnce: the first Ctrl-C says what it waits
// for; the second one does not wait for a slow request.
func TestUpSecondInterruptStopsAtOnce(t *testing.T) {
	file := writeAgents(t, echoAgent("echo", ""))
	base, p := flintUp(t, file, "-shutdown-timeout", "60s")
	c := newClient(t)
	if res, body := get(t, c, base+"/v1/agents/default/echo/warm"); res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	go func() { _, _ = c.Get(base + "/v1/agents/default/echo/slow?sleep=50s") }()
	time.Sleep(500 * time.Millisecond) // the slow request is in flight
	p.signal(syscall.SIGINT)
	p.waitOutput(t, "waiting for 1 request in flight (at most 1m0s)", 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	stopped := time.Now()
	p.signal(syscall.SIGINT)
	p.wait(t, 10*time.Second)
	if d := time.Since(stopped); d > 8*time.Second {
		t.Errorf("the second Ctrl-C took %s to stop flint up", d)
	}
}
