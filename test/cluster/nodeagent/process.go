package nodeagent

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// launch is everything needed to start one container instance.
type launch struct {
	path string   // executable
	args []string // argv, args[0] included
	env  []string
	dir  string
}

// process is one running instance of a container: a process group whose
// leader is the container's main process ("PID 1").
type process struct {
	cmd     *exec.Cmd
	pid     int
	started time.Time

	done     chan struct{} // closed once the leader has exited and the group is gone
	exitCode int32         // valid after done
	signal   syscall.Signal
	finished time.Time
}

// outputGrace bounds the wait for the output pipe to close after the
// process group was killed: a process that escaped the group (setsid) may
// hold it open for ever.
const outputGrace = time.Second

// processHooks are called in order: onStart once the process runs, before
// anything can notice it exit; onExit once it has exited, before done
// closes, so whatever waits for done sees its effects (events are logged
// in the order things happened, even for a process that exits at once).
type processHooks struct {
	onStart, onExit func(*process)
}

// startProcess starts l in a process group of its own, its stdout and
// stderr going line by line to logs under key.
func startProcess(l launch, logs *logStore, key string, hooks processHooks) (*process, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	cmd := &exec.Cmd{Path: l.path, Args: l.args, Env: l.env, Dir: l.dir, Stdout: w, Stderr: w}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A group of its own: the container's processes are signalled and
		// killed together, and never by a signal aimed at the test's group.
		Setpgid: true,
		// Killed with the test process even if neither Stop nor the reaper
		// runs (the reaper covers grandchildren).
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	w.Close() // the child has its copy; EOF comes when the group is gone
	p := &process{cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), done: make(chan struct{})}
	if hooks.onStart != nil {
		hooks.onStart(p)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		logs.copyLines(key, r)
	}()
	go p.wait(r, copied, hooks.onExit)
	return p, nil
}

func (p *process) wait(out *os.File, copied <-chan struct{}, onExit func(*process)) {
	err := p.cmd.Wait()
	p.finished = time.Now()
	p.exitCode, p.signal = exitStatus(p.cmd.ProcessState, err)
	// The main process is gone: like a container runtime tearing down the
	// PID namespace, kill whatever it left behind in its group.
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	select {
	case <-copied:
	case <-time.After(outputGrace):
	}
	out.Close()
	<-copied
	if onExit != nil {
		onExit(p)
	}
	close(p.done)
}

// exitStatus is the exit code a container runtime reports: the process's
// own, or 128+N when signal N killed it.
func exitStatus(ps *os.ProcessState, err error) (int32, syscall.Signal) {
	if ps == nil {
		return 128, 0
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int32(ws.Signal()), ws.Signal()
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return 128, 0
	}
	return int32(ps.ExitCode()), 0
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signalMain sends sig to the main process only, as a container runtime
// does: its children hear of it through it, or die with the group.
func (p *process) signalMain(sig syscall.Signal) {
	_ = p.cmd.Process.Signal(sig) // os.Process guards against a reused pid
}

// kill SIGKILLs the whole group.
func (p *process) kill() {
	if !p.exited() {
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	}
}

// stop sends sig, then SIGKILL after grace or when hurry closes (then
// after hurryGrace), calling beforeKill first; it returns once the process
// has exited and reports whether it had to be killed.
func (p *process) stop(sig syscall.Signal, grace time.Duration, hurry <-chan struct{}, hurryGrace time.Duration, beforeKill func()) (killed bool) {
	if p.exited() {
		return false
	}
	p.signalMain(sig)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
		return false
	case <-timer.C:
	case <-hurry:
		select {
		case <-p.done:
			return false
		case <-time.After(hurryGrace):
		}
	}
	if p.exited() {
		return false
	}
	beforeKill()
	p.kill()
	<-p.done
	return true
}
