package nodeagent

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// markerEnv is set in every container's environment to a value unique to
// one agent. Processes inherit it, so it marks a container's whole process
// tree, including grandchildren that left its process group.
const markerEnv = "FLINT_NODE_AGENT"

// reaperScript kills every process carrying the agent's marker when the
// test process dies without calling Stop (a `go test -timeout` panic, a
// crash, SIGKILL): containers run in process groups of their own and would
// otherwise outlive it and keep their ports.
//
// It blocks reading a pipe whose only writer is the test process; the read
// returns at EOF, which the kernel delivers when that process is gone. It
// ignores INT/TERM/HUP so a Ctrl-C to the terminal's process group does not
// kill it before the processes it guards. A process is recognised by the
// marker in its environment (readable for the user's own processes), so a
// reused pid is never hit; the script's own processes have the marker only
// in their arguments.
const reaperScript = `trap '' INT TERM HUP
read -r _ || true
for p in /proc/[0-9]*; do
  if grep -qaF -- "$1" "$p/environ" 2>/dev/null; then kill -s KILL "${p#/proc/}" 2>/dev/null || true; fi
done
`

type reaper struct {
	cmd *exec.Cmd
	w   *os.File
}

func startReaper(marker string) (*reaper, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("reaper pipe: %w", err)
	}
	cmd := exec.Command("/bin/sh", "-c", reaperScript, "flint-nodeagent-reaper", markerEnv+"="+marker)
	cmd.Stdin = r
	// Its own process group: signals aimed at the test's group miss it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start reaper: %w", err)
	}
	r.Close() // the child holds its copy; ours would keep the pipe open
	return &reaper{cmd: cmd, w: w}, nil
}

// stop ends the reaper without it doing anything: Stop has already stopped
// the containers the normal way.
func (r *reaper) stop() {
	if r == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.w.Close()
}
