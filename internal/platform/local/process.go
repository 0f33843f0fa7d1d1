package local

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// process is one run of an agent's command, in its own process group so
// that stopping it also stops whatever it started (go run, shells), behind
// a supervisor that kills that group if Flint itself dies (supervisor.go).
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startProcess runs argv under supervisor (nil: unsupervised).
func startProcess(supervisor, argv []string, dir string, env []string, out io.Writer) (*process, error) {
	full := supervisedArgv(supervisor, argv)
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = out
	cmd.Stderr = out
	// The parent-death signal reaches the group's leader when Flint dies,
	// even by SIGKILL: a supervisor then kills the whole group; an
	// unsupervised command is killed itself (its children may survive).
	sig := syscall.SIGKILL
	if len(supervisor) > 0 {
		sig = parentDeathSignal
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: sig}
	// A grandchild that keeps the output pipe open must not block Wait forever.
	cmd.WaitDelay = 2 * time.Second
	var err error
	onSpawnThread(func() { err = cmd.Start() })
	if err != nil {
		return nil, fmt.Errorf("start %q: %w", argv[0], err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		// The leader is gone; whatever it started goes with it, so a
		// restart does not find the port taken by an orphan.
		p.kill()
		close(p.done)
	}()
	return p, nil
}

// kill SIGKILLs the process's group at once.
func (p *process) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// exitCode describes how the process ended, for logs.
func (p *process) exitCode() string {
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return "0"
	case errors.As(p.err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "signal " + ws.Signal().String()
		}
		return strconv.Itoa(ee.ExitCode())
	default:
		return p.err.Error()
	}
}

// stop sends SIGTERM to the process group and SIGKILL after grace.
func (p *process) stop(grace time.Duration) {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// The leader may exit before its group; sweep what is left.
	p.kill()
}

// freePort asks the kernel for a free loopback port for an agent to bind.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// environ builds a replica's environment: Flint's own, then the agent's,
// then what Flint sets (PORT) so it cannot be overridden by accident.
func environ(agentEnv []string, port int, agent, replica string) []string {
	env := append(os.Environ(), agentEnv...)
	return append(env, "PORT="+strconv.Itoa(port), "FLINT_AGENT="+agent, "FLINT_REPLICA="+replica)
}
