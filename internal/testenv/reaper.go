package testenv

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flint-dev/flint/internal/testutil/reaper"
)

// reaperScript (run by internal/testutil/reaper) kills the control plane
// when the test process dies without running its cleanups. envtest starts
// etcd and kube-apiserver in process groups of their own, so they would
// otherwise outlive the test and pile up on a 2-core machine.
//
// A pid is only signalled while its command line still names the
// environment's directory, so a reused pid is never hit. Stragglers get
// SIGKILL after 5 seconds.
const reaperScript = `dir=$1; shift
ours() { grep -qaF -- "$dir" "/proc/$1/cmdline" 2>/dev/null; }
signal() { for p in "$@"; do ours "$p" && { kill -s "$sig" -- "-$p" 2>/dev/null || kill -s "$sig" "$p" 2>/dev/null; }; done; }
anyleft() { for p in "$@"; do ours "$p" && return 0; done; return 1; }
sig=TERM; signal "$@"
i=0; while [ $i -lt 50 ] && anyleft "$@"; do sleep 0.1; i=$((i+1)); done
sig=KILL; signal "$@"
rm -rf "$dir"
`

// startReaper starts a reaper for the processes under dir (see reaperScript).
func startReaper(dir string, pids []int) (*reaper.Reaper, error) {
	args := []string{dir}
	for _, p := range pids {
		args = append(args, strconv.Itoa(p))
	}
	return reaper.Start("flint-testenv-reaper", reaperScript, nil, args...)
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
