// Package e2e runs Flint's binaries as real processes on loopback and checks
// what a client sees.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/internal/testutil"
)

// Binaries built once for the whole suite.
var (
	flintBin string
	echoBin  string
	repoRoot string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "flint-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	repoRoot, _ = filepath.Abs("../..")
	flintBin = filepath.Join(dir, "flint")
	echoBin = filepath.Join(dir, "echo")
	for _, b := range []struct{ out, pkg string }{{flintBin, "./cmd/flint"}, {echoBin, "./examples/echo"}} {
		if err := testenv.Build(b.out, b.pkg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

// proc is a process a test started; it is killed (with its group) at cleanup.
type proc struct {
	cmd     *exec.Cmd
	out     *testutil.SyncBuffer
	done    chan struct{}
	waitErr error
}

func start(t *testing.T, dir string, name string, args ...string) *proc {
	t.Helper()
	return startEnv(t, dir, nil, name, args...)
}

// startEnv starts a process with extra environment variables.
func startEnv(t *testing.T, dir string, env []string, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: out, done: make(chan struct{})}
	go func() { p.waitErr = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		// Nothing the process started may outlive it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(name), out.String())
		}
	})
	return p
}

func (p *proc) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("process did not exit within %s; output:\n%s", timeout, p.out.String())
		return -1
	}
}

// waitOutput waits until the process printed s.
func (p *proc) waitOutput(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.out.String(), s) {
		select {
		case <-p.done:
			t.Fatalf("process exited before printing %q:\n%s", s, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %s:\n%s", s, timeout, p.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeAgents writes Agent YAML into a temp dir and returns the file.
func writeAgents(t *testing.T, yaml string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "agents.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// echoAgent is Agent YAML for the prebuilt echo binary.
func echoAgent(name string, extra string) string {
	return fmt.Sprintf(`apiVersion: flint.dev/v1alpha1
kind: Agent
metadata: {name: %s, namespace: default}
spec:
  container:
    command: [%q]
    port: 8080
    readinessProbe: {httpGet: {path: /healthz, port: 8080}}
%s
`, name, echoBin, extra)
}

// flintUp starts `flint up` on the given Agent file and returns the gateway URL.
func flintUp(t *testing.T, file string, args ...string) (string, *proc) {
	t.Helper()
	addr := testutil.FreeAddr(t)
	p := start(t, repoRoot, flintBin, append([]string{"up", "-f", file, "-addr", addr}, args...)...)
	p.waitOutput(t, "Flint is up", 30*time.Second)
	return "http://" + addr, p
}

func newClient(t *testing.T) *http.Client {
	c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// readLines returns a channel of the lines read from r.
func readLines(ctx context.Context, r io.Reader) <-chan string {
	ch := make(chan string)
	go func() {
		defer close(ch)
		s := bufio.NewScanner(r)
		for s.Scan() {
			select {
			case ch <- s.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}
