package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a test process that starts a
// control plane and then dies without cleaning up.
const helperEnv = "FLINT_TESTENV_REAPER_HELPER"

func helperProcess() {
	env, err := New(Options{ControllerManager: true})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Println("DIR", env.Dir)
	for _, p := range env.guarded {
		fmt.Println("PID", p)
	}
	fmt.Println("READY")
	select {} // until SIGKILL
}

// TestReaperStopsControlPlaneWhenTestProcessDies kills a test process
// holding a control plane with SIGKILL, as a `go test -timeout` panic or
// the OOM killer would, and expects its processes and files to go anyway.
func TestReaperStopsControlPlaneWhenTestProcessDies(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	var dir string
	var pids []int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(line, " "); ok && k == "DIR" {
			dir = v
		} else if ok && k == "PID" {
			p, _ := strconv.Atoi(v)
			pids = append(pids, p)
		} else if ok && k == "ERR" {
			t.Fatalf("helper: %s", v)
		} else if line == "READY" {
			break
		}
	}
	if dir == "" || len(pids) != 3 {
		t.Fatalf("helper reported dir %q and pids %v; want a dir and 3 pids", dir, pids)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed = true

	// The reaper sends SIGTERM, waits 5s for stragglers, then SIGKILL.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if len(alive(dir, pids)) == 0 {
			if _, err := os.Stat(dir); os.IsNotExist(err) {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	assertGone(t, dir, pids)
}

// alive returns the pids that still run a command mentioning dir.
func alive(dir string, pids []int) []int {
	var left []int
	for _, p := range pids {
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
		if err == nil && strings.Contains(string(cmdline), dir) {
			left = append(left, p)
		}
	}
	return left
}
