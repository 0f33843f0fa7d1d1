package realnode

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// reaperScript undoes a node whose test process died without calling Stop
// (a `go test -timeout` panic, a crash, SIGKILL). The components started
// with nsenter die with the test process (Pdeathsig), but containerd's
// shims re-parent to init and keep the pods' processes, cgroups and the
// node's directory alive.
//
// It blocks reading a pipe whose only writer is the test process: the read
// returns at EOF, when that process is gone (or Stop closed it after
// cleaning up, leaving nothing to do). It ignores INT/TERM/HUP so a Ctrl-C
// to the terminal does not kill it first. Its arguments come through the
// environment, so its own command line never matches what it kills.
const reaperScript = `trap '' INT TERM HUP
read -r _ || true
ours() {
  cat /sys/fs/cgroup/pids$ROOT/cgroup.procs $(find /sys/fs/cgroup/pids$ROOT -mindepth 2 -name cgroup.procs 2>/dev/null) 2>/dev/null
  for p in /proc/[0-9]*; do
    grep -qaF -- "$DIR" "$p/cmdline" 2>/dev/null && echo "${p#/proc/}"
  done
}
i=0
while [ $i -lt 50 ]; do
  pids=$(ours)
  [ -z "$pids" ] && break
  kill -9 $pids 2>/dev/null
  sleep 0.1
  i=$((i+1))
done
for c in /sys/fs/cgroup/*; do
  [ -d "$c$ROOT" ] && find "$c$ROOT" -depth -type d -exec rmdir {} \; 2>/dev/null
done
rm -rf "$DIR"
`

type reaper struct {
	cmd *exec.Cmd
	w   *os.File
}

func startReaper(dir, cgroupRoot string) (*reaper, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("reaper pipe: %w", err)
	}
	cmd := exec.Command("/bin/sh", "-c", reaperScript)
	cmd.Env = append(os.Environ(), "DIR="+dir, "ROOT="+cgroupRoot)
	cmd.Stdin = r
	// Its own process group and no Pdeathsig: it must outlive us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start reaper: %w", err)
	}
	r.Close()
	return &reaper{cmd: cmd, w: w}, nil
}

// release tells the reaper the node is gone and waits for it to exit.
func (r *reaper) release() error {
	r.w.Close()
	return r.cmd.Wait()
}
