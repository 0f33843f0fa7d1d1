package realnode

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// procAttr: children die with the test process (a `go test` timeout or
// crash), and a Ctrl-C to the terminal reaches only the test process, which
// then stops them in order.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// proc is one long-running component inside the namespace.
type proc struct {
	name    string
	pid     int
	done    chan struct{}
	waitErr error
}

// startProc runs argv inside the namespaces, logging to logs/NAME.log.
func (n *Node) startProc(name string, argv ...string) (*proc, error) {
	logf, err := os.OpenFile(n.LogPath(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := n.nsenter(argv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	n.procs = append(n.procs, p)
	n.cfg.Log("realnode: %s started (pid %d)", name, p.pid)
	return p, nil
}

// exited reports whether the process is gone, with its error.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// stop sends SIGTERM, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) error {
	if done, _ := p.exited(); done {
		return nil
	}
	_ = syscall.Kill(p.pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return errors.New(p.name + " survived SIGKILL for 5s")
	}
}
