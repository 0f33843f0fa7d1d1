package bridge

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flint-dev/flint/internal/testutil"
)

// The reaper must run where orphans reach it. A test cannot be PID 1, but
// a child subreaper gets orphans the same way; the test runs in a process
// of its own (this test binary again) so that making it a subreaper, and
// reaping, cannot touch other tests' children.
const reaperHelperEnv = "FLINT_BRIDGE_REAPER_HELPER"

func TestReaperReapsOrphansButNotItsOwnChildren(t *testing.T) {
	if os.Getenv(reaperHelperEnv) == "1" {
		reaperScenario(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReaperReapsOrphansButNotItsOwnChildren$", "-test.v")
	cmd.Env = append(os.Environ(), reaperHelperEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("reaper scenario failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func reaperScenario(t *testing.T) {
	if mustReap() {
		t.Fatal("the helper reaps before it is made a subreaper")
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	if !mustReap() {
		t.Fatal("a subreaper must reap")
	}
	r := newOrphanReaper()
	self := os.Getpid()

	// A child that leaves an orphan behind: sh exits at once, its
	// background sleep is reparented to us and dies soon after.
	leaver := exec.Command("/bin/sh", "-c", "sleep 0.2 & exit 3")
	started := r.starting()
	if err := leaver.Start(); err != nil {
		started(0)
		t.Fatal(err)
	}
	started(leaver.Process.Pid)

	// Both the child and the orphan become zombies: nobody has waited.
	deadline := time.Now().Add(10 * time.Second)
	var zombies []int
	for time.Now().Before(deadline) {
		if zombies = zombieChildren(self); len(zombies) == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(zombies) != 2 || !slices.Contains(zombies, leaver.Process.Pid) {
		t.Fatalf("zombies %v, want the child %d and its orphan", zombies, leaver.Process.Pid)
	}

	// A sweep reaps the orphan and leaves the child to its exec.Cmd.
	if n := r.sweep(); n != 1 {
		t.Fatalf("sweep reaped %d, want the orphan alone", n)
	}
	if left := zombieChildren(self); !slices.Equal(left, []int{leaver.Process.Pid}) {
		t.Fatalf("zombies after the sweep %v, want only the child %d", left, leaver.Process.Pid)
	}
	err := leaver.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("the child's own Wait got %v, want exit status 3: the reaper stole it", err)
	}
	r.waited(leaver.Process.Pid)
	if left := zombieChildren(self); len(left) != 0 {
		t.Errorf("zombies left: %v", left)
	}
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		in    string
		state byte
		ppid  int
		ok    bool
	}{
		{"42 (sleep) Z 1 42 42 0 -1", 'Z', 1, true},
		{"43 (a (weird) name) S 7 43 43", 'S', 7, true},
		{"44 (no close paren S 1", 0, 0, false},
		{"45 (x) Z", 0, 0, false},
	} {
		state, ppid, ok := parseStat([]byte(tc.in))
		if state != tc.state || ppid != tc.ppid || ok != tc.ok {
			t.Errorf("parseStat(%q) = %c %d %t", tc.in, state, ppid, ok)
		}
	}
}

// TestBridgeAsSubreaperReapsOrphansOfItsChildren runs a whole bridge as a
// child subreaper (as PID 1 it gets orphans the same way) over stdio
// servers that each leave an orphan behind: the orphans are reaped, the
// sessions' children are untouched and still answer, and shutdown stops
// them in the spec's order.
func TestBridgeAsSubreaperReapsOrphansOfItsChildren(t *testing.T) {
	if os.Getenv(reaperHelperEnv) != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBridgeAsSubreaperReapsOrphansOfItsChildren$", "-test.v")
		cmd.Env = append(os.Environ(), reaperHelperEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bridge as subreaper failed: %v\n%s", err, out)
		}
		return
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	tb := startBridge(t, nil, "FAKE_CHILD_ORPHAN=1")
	tb.waitReady(t) // the probe child left an orphan
	cs := tb.connect(t, nil)
	pid, err := callInt(t, cs, "whoami", "pid", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The probe's and the session's orphans (sleep 0.2) die and are reaped.
	testutil.WaitFor(t, "the orphans to be reaped", func() bool {
		if tb.reaper.reaped.Load() < 2 {
			return false
		}
		tb.reaper.mu.Lock()
		defer tb.reaper.mu.Unlock()
		for _, z := range zombieChildren(os.Getpid()) {
			if !tb.reaper.own[z] {
				return false
			}
		}
		return true
	})
	if again, err := callInt(t, cs, "whoami", "pid", nil); err != nil || again != pid {
		t.Fatalf("the session's child after reaping: pid %d, %v; want %d still serving", again, err, pid)
	}
	tb.stop()
	ev := eventsOf(readChildLog(t, tb.childLog), pid)
	if ev["stdin-eof"].IsZero() || ev["exit"].IsZero() || ev["exit"].Before(ev["stdin-eof"]) || !ev["sigterm"].IsZero() {
		t.Errorf("session child's shutdown %v: want stdin closed first, then a clean exit without SIGTERM", ev)
	}
}
