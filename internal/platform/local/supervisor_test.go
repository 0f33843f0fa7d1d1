package local

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testutil"
)

// fakeUpEnv makes the test binary act as a `flint up` that starts one agent
// command (the variable's value, run by sh) through startProcess, prints the
// group's id and waits to be killed.
const fakeUpEnv = "FLINT_TEST_FAKE_UP"

func fakeUp() int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Println(err)
		return 1
	}
	p, err := startProcess([]string{exe, SuperviseCommand}, []string{"sh", "-c", os.Getenv(fakeUpEnv)}, "", os.Environ(), os.Stdout)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("pgid", p.cmd.Process.Pid)
	select {}
}

// testSupervisor is the supervisor command in this package's tests: the test
// binary itself (TestMain dispatches it).
func testSupervisor(t *testing.T) []string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe, SuperviseCommand}
}

// groupAlive reports whether any process is left in process group pgid.
func groupAlive(pgid int) bool {
	return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

// TestSIGKILLedParentTakesAgentGrandchildren: an agent command that is a
// wrapper which does not exec (a shell starting two background processes,
// as `go run` starts the built binary) leaves nothing behind when the
// process that started it (here a stand-in for `flint up`) is SIGKILLed.
func TestSIGKILLedParentTakesAgentGrandchildren(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), fakeUpEnv+"=sleep 600 & sleep 600 & echo started; wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pgid int
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if pgid > 0 {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	started := false
	for (pgid == 0 || !started) && sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "pgid "); ok {
			pgid, _ = strconv.Atoi(n)
		}
		started = started || line == "started"
	}
	if pgid == 0 || !started {
		t.Fatalf("the fake flint up did not start its agent (pgid %d, started %v)", pgid, started)
	}
	if n := len(groupMembers(t, pgid)); n != 4 { // supervisor, sh, two sleeps
		t.Fatalf("the agent's group has %d processes, want 4", n)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			t.Fatalf("10s after SIGKILL of their flint up, these remain: %v", groupMembers(t, pgid))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupMembers lists the processes of group pgid from /proc.
func groupMembers(t *testing.T, pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err == nil && g == pgid {
			if st, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil && !strings.Contains(string(st), ") Z ") {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// TestSupervisorPassesExitOn: the supervisor ends as its command ended.
func TestSupervisorPassesExitOn(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		script string
		want   string
	}{
		{"exit 0", "0"},
		{"exit 3", "3"},
		{"kill -TERM $$", "signal terminated"},
	} {
		out := &testutil.SyncBuffer{}
		p, err := startProcess([]string{exe, SuperviseCommand}, []string{"sh", "-c", tc.script}, "", os.Environ(), out)
		if err != nil {
			t.Fatal(err)
		}
		<-p.done
		if got := p.exitCode(); got != tc.want {
			t.Errorf("%q: exit %s, want %s (output %q)", tc.script, got, tc.want, out.String())
		}
	}
}
