package main

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildEcho builds the agent (from the build cache after the first time).
func buildEcho(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the agent")
	}
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the agent with")
	}
	bin := filepath.Join(t.TempDir(), "echo")
	out, err := exec.Command(gocmd, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var listening = regexp.MustCompile(`msg=listening addr=(\S+) pid=(\d+)`)

// startEcho runs the agent on a free port and returns its base URL once it
// listens, with the process and a channel that receives its exit error.
func startEcho(t *testing.T, bin string, env ...string) (string, *exec.Cmd, <-chan error) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), "PORT=0"), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	exited := make(chan error, 1)
	logged := make(chan struct{})
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-logged // no t.Log once the test is over
	})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log("echo: " + sc.Text())
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				if m[2] != strconv.Itoa(cmd.Process.Pid) {
					t.Errorf("agent pid %s is not the started process %d", m[2], cmd.Process.Pid)
				}
				addr <- m[1]
			}
		}
		io.Copy(io.Discard, stderr)
		exited <- cmd.Wait()
	}()
	select {
	case a := <-addr:
		return "http://" + a, cmd, exited
	case err := <-exited:
		t.Fatalf("echo exited before listening: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("echo did not log its address within 60s")
	}
	return "", nil, nil
}

func waitExit(t *testing.T, exited <-chan error, within time.Duration) {
	t.Helper()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("echo exited with %v, want exit status 0", err)
		}
	case <-time.After(within):
		t.Fatalf("echo still running %v after SIGTERM", within)
	}
}

func TestProcessSIGTERMIdle(t *testing.T) {
	url, cmd, exited := startEcho(t, buildEcho(t))
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, exited, 5*time.Second)
	if took := time.Since(start); took > time.Second {
		t.Errorf("idle shutdown took %v", took)
	}
}

// TestProcessSIGTERMDrains checks that SIGTERM stops new connections but
// lets an in-flight request finish, then exits 0.
func TestProcessSIGTERMDrains(t *testing.T) {
	url, cmd, exited := startEcho(t, buildEcho(t))
	type result struct {
		status int
		err    error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := http.Get(url + "/slow?sleep=800ms")
		if err != nil {
			inflight <- result{err: err}
			return
		}
		resp.Body.Close()
		inflight <- result{status: resp.StatusCode}
	}()
	time.Sleep(200 * time.Millisecond) // let the request arrive
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := client.Get(url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("new connection accepted while draining")
	} else if !errors.Is(err, syscall.ECONNREFUSED) && !strings.Contains(err.Error(), "refused") {
		t.Logf("new request while draining failed with %v", err)
	}
	if r := <-inflight; r.err != nil || r.status != 200 {
		t.Fatalf("in-flight request: status %d, err %v; want 200", r.status, r.err)
	}
	waitExit(t, exited, 5*time.Second)
}

// TestRunScript runs the agent as agent.yaml tells local mode to: run.sh
// must build it and exec it, so that the started process is the agent,
// SIGTERM reaches it and it exits 0.
func TestRunScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build the agent with")
	}
	tmp := t.TempDir() // run.sh builds into $TMPDIR: start from no binary
	for i, want := range []string{"built", "up to date"} {
		url, cmd, exited := startEcho(t, "./run.sh", "TMPDIR="+tmp)
		resp, err := http.Get(url + "/?n=" + strconv.Itoa(i))
		if err != nil {
			t.Fatalf("%s: %v", want, err)
		}
		resp.Body.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		waitExit(t, exited, 5*time.Second)
	}
}
