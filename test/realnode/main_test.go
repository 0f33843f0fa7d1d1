package realnode_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/test/realnode"
)

// One node per `go test` process, shared by every test; each test works in
// a namespace of its own.
var (
	node *realnode.Node
	// skipReason is why there is no node (a developer machine without root
	// or the Debian packages); tests skip with it.
	skipReason string
)

const requireEnv = "FLINT_REQUIRE_REALNODE"

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if testing.Short() {
		skipReason = "real-node suite skipped in -short mode"
		return m.Run()
	}
	if err := realnode.SystemPrerequisites(); err != nil {
		if os.Getenv(requireEnv) == "1" {
			fmt.Fprintf(os.Stderr, "realnode: %v, and %s=1\n", err, requireEnv)
			return 1
		}
		skipReason = fmt.Sprintf("no real node on this machine: %v (set %s=1 to make this a failure)", err, requireEnv)
		return m.Run()
	}
	binDir, err := kubeBinaries()
	if err != nil {
		fmt.Fprintln(os.Stderr, "realnode:", err)
		return 1
	}
	before, err := realnode.TakeHostState()
	if err != nil {
		fmt.Fprintln(os.Stderr, "realnode: host state:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	node, err = realnode.Start(ctx, realnode.Config{BinDir: binDir, Log: logf})
	if err != nil {
		fmt.Fprintln(os.Stderr, "realnode: start:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "realnode: node up in %s (images %s, namespace → Node Ready %s, → DNS %s), state in %s\n",
		time.Since(t0).Round(time.Millisecond), node.Timings.Images.Round(time.Millisecond),
		node.Timings.NodeReady.Round(time.Millisecond), node.Timings.DNSReady.Round(time.Millisecond), node.Dir)
	code := m.Run()
	if code != 0 || os.Getenv("FLINT_REALNODE_KEEP_LOGS") != "" {
		keepLogs()
	}
	ts := time.Now()
	if err := node.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "realnode: stop:", err)
		code = 1
	}
	fmt.Fprintf(os.Stderr, "realnode: torn down in %s\n", time.Since(ts).Round(time.Millisecond))
	// The host must be left as found: this is the suite's last check.
	after, err := realnode.TakeHostState()
	if err != nil {
		fmt.Fprintln(os.Stderr, "realnode: host state:", err)
		return 1
	}
	if diff := after.Diff(before); len(diff) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the host was not left as found:\n  %s\n", strings.Join(diff, "\n  "))
		return 1
	}
	fmt.Fprintln(os.Stderr, "realnode: host left as found (mounts, cgroups, sysctls, iptables, links, processes)")
	return code
}

// kubeBinaries builds (or finds in the cache) the node's binaries.
func kubeBinaries() (string, error) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(filepath.Join(root, "hack", "kube-binaries.sh"), "--node")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/kube-binaries.sh --node: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}

// keepLogs copies the components' logs out of the node's directory, which
// Stop removes, so a failure can be investigated.
func keepLogs() {
	dst, err := os.MkdirTemp("", "flint-realnode-logs-")
	if err != nil {
		return
	}
	if err := exec.Command("cp", "-r", filepath.Join(node.Dir, "logs"), dst).Run(); err == nil {
		fmt.Fprintf(os.Stderr, "realnode: component logs kept in %s/logs\n", dst)
	}
}

func logf(format string, args ...any) {
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

// needNode skips the test when there is no node (see skipReason).
func needNode(t *testing.T) {
	t.Helper()
	if node == nil {
		t.Skip(skipReason)
	}
}
