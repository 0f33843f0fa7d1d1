package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// reaperScript kills the control plane when the test process dies without
// running its cleanups (a `go test -timeout` panic, a crash, SIGKILL).
// envtest starts etcd and kube-apiserver in process groups of their own,
// so they would otherwise outlive the test and pile up on a 2-core machine.
//
// It blocks reading a pipe whose only writer is the test process; the read
// returns at EOF, which the kernel delivers when that process is gone. It
// ignores INT/TERM/HUP so that a Ctrl-C to the terminal's process group
// does not kill it before the processes it guards. A pid is only signalled
// while its command line still names the environment's directory, so a
// reused pid is never hit. Stragglers get SIGKILL after 5 seconds.
const reaperScript = `trap '' INT TERM HUP
read -r _ || true
dir=$1; shift
ours() { grep -qaF -- "$dir" "/proc/$1/cmdline" 2>/dev/null; }
signal() { for p in "$@"; do ours "$p" && { kill -s "$sig" -- "-$p" 2>/dev/null || kill -s "$sig" "$p" 2>/dev/null; }; done; }
anyleft() { for p in "$@"; do ours "$p" && return 0; done; return 1; }
sig=TERM; signal "$@"
i=0; while [ $i -lt 50 ] && anyleft "$@"; do sleep 0.1; i=$((i+1)); done
sig=KILL; signal "$@"
rm -rf "$dir"
`

// reaper guards the processes of one environment.
type reaper struct {
	cmd *exec.Cmd
	w   *os.File
}

// startReaper starts a reaper for the processes under dir (see reaperScript).
func startReaper(dir string, pids []int) (*reaper, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("reaper pipe: %w", err)
	}
	args := []string{"-c", reaperScript, "flint-testenv-reaper", dir}
	for _, p := range pids {
		args = append(args, strconv.Itoa(p))
	}
	cmd := exec.Command("/bin/sh", args...)
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

// stop ends the reaper without it doing anything: the caller has already
// stopped the processes the normal way.
func (r *reaper) stop() {
	if r == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.w.Close()
}

// childrenUnder returns the pids of this process's children whose command
// line mentions dir: the control-plane processes of one environment, told
// apart from another environment's in the same test binary.
func childrenUnder(dir string) []int {
	self := os.Getpid()
	entries, _ := filepath.Glob("/proc/[0-9]*/stat")
	var pids []int
	for _, statPath := range entries {
		stat, err := os.ReadFile(statPath)
		if err != nil {
			continue // exited meanwhile
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(self) {
			continue
		}
		procDir := filepath.Dir(statPath)
		cmdline, err := os.ReadFile(filepath.Join(procDir, "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(procDir)); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
