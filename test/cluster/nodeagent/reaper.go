package nodeagent

import "github.com/flint-dev/flint/internal/testutil/reaper"

// markerEnv is set in every container's environment to a value unique to
// one agent. Processes inherit it, so it marks a container's whole process
// tree, including grandchildren that left its process group.
const markerEnv = "FLINT_NODE_AGENT"

// reaperScript (run by internal/testutil/reaper) kills every process
// carrying the agent's marker when the test process dies without calling
// Stop: containers run in process groups of their own and would otherwise
// outlive it and keep their ports.
//
// A process is recognised by the marker in its environment (readable for
// the user's own processes), so a reused pid is never hit; the script's
// own processes have the marker only in their arguments.
const reaperScript = `for p in /proc/[0-9]*; do
  if grep -qaF -- "$1" "$p/environ" 2>/dev/null; then kill -s KILL "${p#/proc/}" 2>/dev/null || true; fi
done
`

func startReaper(marker string) (*reaper.Reaper, error) {
	return reaper.Start("flint-nodeagent-reaper", reaperScript, nil, markerEnv+"="+marker)
}
