package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the pause program when asked to.
func TestMain(m *testing.M) {
	if os.Getenv("FLINT_PAUSE_TEST_MAIN") == "1" {
		// main, telling the test when its handlers are in place.
		sigs := notify()
		fmt.Println("ready")
		wait(sigs)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func startPause(t *testing.T, attr *syscall.SysProcAttr) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FLINT_PAUSE_TEST_MAIN=1")
	cmd.SysProcAttr = attr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	// Signals sent before the handlers are installed would kill it.
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("pause did not start: %q %v", line, err)
	}
	return cmd
}

func TestExitsZeroOnSIGTERMAndSIGINT(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := startPause(t, nil)
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("after %v: %v, want exit 0", sig, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("still running 10s after %v", sig)
		}
	}
}

// As the first process of a PID namespace (a pod sandbox's), pause inherits
// every orphan there and must reap it, or exited processes pile up as
// zombies.
func TestReapsOrphansAsPIDNamespaceInit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating a PID namespace needs root (CI runs as root)")
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Fatal("nsenter (util-linux) is needed")
	}
	cmd := startPause(t, &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID})
	pid := cmd.Process.Pid
	// A shell inside pause's PID namespace starts a sleep and exits: the
	// sleep is orphaned and handed to pause, the namespace's init.
	out, err := exec.Command(nsenter, "-t", strconv.Itoa(pid), "-p", "--", "sh", "-c", "sleep 1 </dev/null >/dev/null 2>&1 & exit 0").CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v\n%s", err, out)
	}
	if kids := children(t, pid); len(kids) != 1 {
		t.Fatalf("pause has children %v, want the orphaned sleep", kids)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(children(t, pid)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("children %v still there 9s after they exited: not reaped", children(t, pid))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v, want exit 0", err)
	}
}

// children lists "pid state" of the processes whose parent is pid.
func children(t *testing.T, pid int) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces, so cut at ")".
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		fields := strings.Fields(s[i+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, strings.Fields(s)[0]+" "+fields[0])
		}
	}
	return out
}
