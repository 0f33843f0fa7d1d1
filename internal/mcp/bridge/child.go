package bridge

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/flint-dev/flint/internal/lineprefix"
)

// child is one run of the stdio server: its process and the SDK connection
// over its stdin and stdout.
type child struct {
	cmd    *exec.Cmd
	conn   mcp.Connection
	reaper *orphanReaper
}

// startChild starts the command with the SDK's CommandTransport, which
// speaks newline-delimited JSON-RPC over the pipes and, on Close, stops the
// process the way the MCP spec asks: close stdin, wait, SIGTERM, wait,
// SIGKILL. Each child has its own process group, so a signal meant for the
// bridge (a terminal's Ctrl-C, the local runtime's SIGTERM to the bridge's
// group) does not reach it behind the bridge's back and break that order.
func (b *Bridge) startChild(ctx context.Context, name string) (*child, error) {
	cmd := exec.Command(b.argv[0], b.argv[1:]...)
	// The child's stderr goes to the bridge's, whole lines at a time after
	// a prefix naming the session.
	cmd.Stderr = lineprefix.New(b.out, &b.outMu, name+" | ")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// If the bridge itself is killed, its children must not linger.
		Pdeathsig: syscall.SIGKILL,
	}
	// A grandchild that keeps stderr open must not hold Wait forever.
	cmd.WaitDelay = time.Second
	t := &mcp.CommandTransport{Command: cmd, TerminateDuration: b.cfg.ChildStopWait}
	started := b.reaper.starting() // see reaper.go
	conn, err := t.Connect(ctx)
	started(pidOf(cmd))
	if err != nil {
		return nil, fmt.Errorf("start %q: %w", b.argv[0], err)
	}
	return &child{cmd: cmd, conn: conn, reaper: b.reaper}, nil
}

// stop shuts the child down in the spec's order (see startChild), then
// sweeps its process group for anything it started, and reports how it
// ended, for logs.
func (c *child) stop() (status string, took time.Duration) {
	start := time.Now()
	err := c.conn.Close()
	took = time.Since(start)
	if c.cmd.ProcessState != nil {
		c.reaper.waited(c.cmd.Process.Pid)
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	if c.cmd.ProcessState != nil {
		// Wait has returned, so stderr is fully copied: flush its last,
		// unterminated line.
		c.cmd.Stderr.(*lineprefix.Writer).Flush()
	}
	return exitStatus(c.cmd, err), took
}

// exitStatus describes how a stopped child ended.
func exitStatus(cmd *exec.Cmd, closeErr error) string {
	ps := cmd.ProcessState
	if ps == nil {
		if closeErr != nil {
			return closeErr.Error()
		}
		return "unknown"
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "signal " + ws.Signal().String() // "signal killed", "signal terminated"
	}
	var ee *exec.ExitError
	if closeErr != nil && !errors.As(closeErr, &ee) {
		return "exit " + strconv.Itoa(ps.ExitCode()) + " (" + closeErr.Error() + ")"
	}
	return "exit " + strconv.Itoa(ps.ExitCode())
}
