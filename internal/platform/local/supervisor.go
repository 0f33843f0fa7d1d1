package local

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Why a supervisor: an agent's command may start processes of its own and
// not exec into them (`go run`, a shell script without exec). Each replica's
// command runs in its own process group, so stopping the group stops them
// all; but when `flint up` is SIGKILLed nothing is left to stop the group,
// and the kernel's parent-death signal reaches only direct children. So
// every agent command runs under a tiny supervisor (this executable's hidden
// supervise-agent command): it leads the replica's process group, gets
// parentDeathSignal when `flint up` dies however it dies, and then kills its
// whole group, grandchildren included. A process that leaves the group on
// purpose (setsid, a daemon) is out of reach; only a cgroup would catch it.
//
//	flint up ── supervisor (group leader, pdeathsig) ── agent ── grandchildren
//	            └────────────── one process group ──────────────┘

// SuperviseCommand is the hidden flint subcommand that runs Supervise.
const SuperviseCommand = "supervise-agent"

// parentDeathSignal is what the kernel sends a supervisor when `flint up`
// dies. It is not SIGTERM, which the supervisor shares with its agent when
// the replica is stopped gracefully.
const parentDeathSignal = syscall.SIGHUP

// defaultSupervisorCommand runs this executable's supervise-agent command.
// A test binary has no such command (it would run its tests again): there
// processes run unsupervised unless the test sets Config.Supervisor.
func defaultSupervisorCommand() []string {
	if testing.Testing() {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	return []string{exe, SuperviseCommand}
}

// supervisedArgv puts argv behind the supervisor, which checks that its
// parent is still this process once it can catch parentDeathSignal.
func supervisedArgv(supervisor, argv []string) []string {
	if len(supervisor) == 0 {
		return argv
	}
	out := append(append([]string{}, supervisor...), strconv.Itoa(os.Getpid()), "--")
	return append(out, argv...)
}

// Supervise is the supervise-agent command: PARENT_PID -- COMMAND [ARGS].
// It runs COMMAND in its own process group (the one its parent made it lead),
// passes its exit status on, and kills the whole group the moment the parent
// dies. It returns the exit code; a command killed by a signal makes the
// supervisor die of the same signal, so the parent sees what happened.
func Supervise(args []string) int {
	if len(args) < 3 || args[1] != "--" {
		fmt.Fprintln(os.Stderr, "usage: flint "+SuperviseCommand+" PARENT_PID -- COMMAND [ARGS]: runs an agent for `flint up`; not meant to be run by hand")
		return 2
	}
	parent, err := strconv.Atoi(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "flint %s: parent pid %q: %v\n", SuperviseCommand, args[0], err)
		return 2
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, parentDeathSignal, syscall.SIGTERM, syscall.SIGINT)
	// The parent set the parent-death signal before exec; if it died before
	// the handler above was installed, the signal was lost (or killed us
	// before any agent started): check once more now.
	if os.Getppid() != parent {
		killGroup()
	}
	argv := args[2:]
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Killed outright (SIGKILL to the supervisor alone), it still takes its
	// child along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "start %q: %v\n", argv[0], err)
		return 127
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			if s == parentDeathSignal {
				killGroup()
			}
			// SIGTERM and SIGINT went to the whole group: the command got
			// them too and decides when to exit.
		case err := <-done:
			return passOn(err)
		}
	}
}

// killGroup SIGKILLs the supervisor's process group, itself included.
func killGroup() {
	_ = syscall.Kill(0, syscall.SIGKILL)
	select {} // the signal is on its way
}

// passOn ends the supervisor the way its command ended.
func passOn(err error) int {
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if !errors.As(err, &ee) {
		return 1
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sig := ws.Signal()
		signal.Reset(sig)
		_ = syscall.Kill(os.Getpid(), sig)
		time.Sleep(time.Second) // a signal that does not kill falls through
		return 128 + int(sig)
	}
	return ee.ExitCode()
}

// ExitWithParent makes this process receive sig when its parent dies, so
// `flint up` started by a wrapper that does not forward signals (go run,
// some process managers) stops with it instead of living on as an orphan
// that holds the gateway's port. It reports whether the parent had already
// gone.
func ExitWithParent(sig syscall.Signal) error {
	parent := os.Getppid()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(sig), 0); errno != 0 {
		return fmt.Errorf("set the parent-death signal: %w", errno)
	}
	if os.Getppid() != parent {
		return errors.New("the parent process has already exited")
	}
	return nil
}

// The kernel sends the parent-death signal when the parent *thread* that
// forked a child exits, not when its process does. Go ends the threads of
// goroutines that exit while locked to them, so every agent process is
// forked from one goroutine locked to a thread that lives as long as Flint.
var (
	spawnOnce sync.Once
	spawns    chan func()
)

// onSpawnThread runs f on the long-lived forking thread.
func onSpawnThread(f func()) {
	spawnOnce.Do(func() {
		spawns = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must not be reused or ended
			for f := range spawns {
				f()
			}
		}()
	})
	done := make(chan struct{})
	spawns <- func() { defer close(done); f() }
	<-done
}
