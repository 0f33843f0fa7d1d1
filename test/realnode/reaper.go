package realnode

import "github.com/flint-dev/flint/internal/testutil/reaper"

// reaperScript (run by internal/testutil/reaper) undoes a node whose test
// process died without calling Stop (a `go test -timeout` panic, a crash,
// SIGKILL); Stop also runs it, after cleaning up, leaving it nothing to
// do. The components started with nsenter die with the test process
// (Pdeathsig), but containerd's shims re-parent to init and keep the pods'
// processes, cgroups and the node's directory alive.
//
// Its arguments come through the environment, so its own command line
// never matches what it kills.
const reaperScript = `ours() {
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

func startReaper(dir, cgroupRoot string) (*reaper.Reaper, error) {
	return reaper.Start("flint-realnode-reaper", reaperScript, []string{"DIR=" + dir, "ROOT=" + cgroupRoot})
}
