package local

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
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

// prefixWriter writes each line of a child's output with a prefix naming
// its replica, like docker compose; partial lines wait for their end.
type prefixWriter struct {
	mu     *sync.Mutex // shared by all replicas so lines never interleave
	out    io.Writer
	prefix []byte
	buf    []byte
	last   string // the last line, for failure messages
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(w.buf[:i+1])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // a runaway line without newline
		w.emit(append(w.buf, '\n'))
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

func (w *prefixWriter) emit(line []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if l := strings.TrimSpace(string(line)); l != "" {
		w.last = l
	}
	_, _ = w.out.Write(append(append([]byte(nil), w.prefix...), line...))
}

// lastLine returns the last non-empty line written.
func (w *prefixWriter) lastLine() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// environ builds a replica's environment: Flint's own, then the agent's,
// then what Flint sets (PORT) so it cannot be overridden by accident.
func environ(agentEnv []string, port int, agent, replica string) []string {
	env := append(os.Environ(), agentEnv...)
	return append(env, "PORT="+strconv.Itoa(port), "FLINT_AGENT="+agent, "FLINT_REPLICA="+replica)
}
