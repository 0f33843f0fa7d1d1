// Package reaper cleans up after a test process that dies without running
// its cleanups (a `go test -timeout` panic, a crash, SIGKILL): the test
// harnesses that start processes outliving their parent (a control plane,
// a fake node's containers, a real node) each give it a shell script that
// finds and kills their own, and it runs that script once the test
// process is gone. It imports only the standard library.
package reaper

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// preamble makes the script wait for the test process's end. It blocks
// reading a pipe whose only writer is the test process; the read returns
// at EOF, which the kernel delivers when that process is gone (or Release
// closed it). It ignores INT/TERM/HUP so that a Ctrl-C to the terminal's
// process group does not kill it before the processes it guards.
const preamble = "trap '' INT TERM HUP\nread -r _ || true\n"

// Reaper is a /bin/sh script waiting for the test process to end.
type Reaper struct {
	cmd *exec.Cmd
	w   *os.File
}

// Start starts script under /bin/sh, to run when this process is gone. name
// is its $0 (what ps shows), args its $1…, env is added to this process's
// environment. Arguments and environment are visible to the script only:
// a script that matches processes by command line must take what it
// matches from the environment or guard against matching itself.
func Start(name, script string, env []string, args ...string) (*Reaper, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("reaper pipe: %w", err)
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", preamble + script, name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = r
	// Its own process group, and no Pdeathsig: signals aimed at the test's
	// group miss it, and it must outlive the test process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start reaper: %w", err)
	}
	r.Close() // the child holds its copy; ours would keep the pipe open
	return &Reaper{cmd: cmd, w: w}, nil
}

// Stop ends the reaper without it running its script: the caller has
// stopped its processes the normal way. A nil Reaper is fine.
func (r *Reaper) Stop() {
	if r == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.w.Close()
}

// Release runs the script now, as if the test process had gone, and waits
// for it to finish.
func (r *Reaper) Release() error {
	r.w.Close()
	return r.cmd.Wait()
}
