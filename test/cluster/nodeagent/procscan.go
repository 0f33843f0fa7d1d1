package nodeagent

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// LiveProcesses returns the pids of the processes still carrying this
// agent's marker: containers, what they started (even outside their
// process group) and exec probes or hooks. After Stop it must be empty; a
// test can assert so to prove nothing leaked.
func (a *Agent) LiveProcesses() []int {
	return processesWithEnv(markerEnv + "=" + a.marker)
}

// processesWithEnv lists the processes whose environment holds the entry
// kv ("NAME=value"), skipping zombies (exited, waiting to be reaped).
func processesWithEnv(kv string) []int {
	want := []byte(kv)
	entries, _ := filepath.Glob("/proc/[0-9]*/environ")
	var pids []int
	for _, path := range entries {
		env, err := os.ReadFile(path)
		if err != nil {
			continue // exited meanwhile, or not ours
		}
		found := false
		for entry := range bytes.SplitSeq(env, []byte{0}) {
			if bytes.Equal(entry, want) {
				found = true
				break
			}
		}
		if !found {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err != nil || isZombie(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z'
}

// signalName is the name a pod spec would use for sig.
func signalName(sig syscall.Signal) string {
	for name, s := range signalsByName {
		if s == sig {
			return string(name)
		}
	}
	return sig.String()
}
