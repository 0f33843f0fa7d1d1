// Package podnet runs a test binary in a network of its own where pod IPs
// are ordinary addresses, so Kubernetes accepts them in EndpointSlices.
//
// Why: the test node agent gives each pod a distinct local address. On the
// host, only 127.0.0.0/8 is local without privileges, but kube-apiserver
// refuses loopback addresses in EndpointSlices and Endpoints
// (ValidateEndpointIP: "may not be in the loopback range"), so the
// EndpointSlice controller cannot publish such pods and nothing that routes
// by EndpointSlices (Flint's gateway) can find them.
//
// How: Run re-executes the test binary, same arguments and environment,
// under `unshare --net` (plus `--map-root-user` when not root): a new
// network namespace whose loopback interface is brought up and given
// HostIP/16. An address with a prefix on a loopback interface makes the
// kernel route the whole prefix locally (as 127.0.0.0/8 is), so every
// 10.244.x.y can be listened on and connected to, with no other set-up and
// nothing visible outside the namespace. Inside, 127.0.0.1 works as usual
// (kube-apiserver, etcd), and there is no way out: the default route points
// at the loopback interface only because kube-apiserver needs a default
// route to choose the address it advertises (HostIP). Build binaries and
// download anything before Run, in the outer process.
//
// It needs unshare(1) and ip(8), and either root or unprivileged user
// namespaces (on Ubuntu 24.04 also
// kernel.apparmor_restrict_unprivileged_userns=0). Without them Run fails
// with the reason rather than skipping, so CI cannot pass by not testing.
package podnet

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

const (
	// CIDR is the namespace's pod network, local in its entirety.
	CIDR = "10.244.0.0/16"
	// HostIP is the node's address in it (for nodeagent.Config.HostIP).
	HostIP = "10.244.0.1"
	// PodIPPrefix is where pod IPs come from (for nodeagent.Config.IPPrefix).
	PodIPPrefix = "10.244.1."
)

// insideEnv marks the re-executed process.
const insideEnv = "FLINT_PODNET_INSIDE"

// setupScript brings the namespace's network up, then becomes the test
// binary ($0 "$@"), so signals and the exit status are the binary's own.
const setupScript = `set -e
ip link set lo up
ip addr add ` + HostIP + `/16 dev lo
ip route add default dev lo
exec "$0" "$@"`

// Inside reports whether this process runs in the pod network namespace.
func Inside() bool { return os.Getenv(insideEnv) == "1" }

// Run re-executes the current test binary inside a new pod network
// namespace with env added to its environment, waits for it and returns
// its exit code (1 with a message on stderr if it could not run). Call it
// from TestMain when Inside is false, after any step that needs the
// outside network:
//
//	func TestMain(m *testing.M) {
//		if !podnet.Inside() {
//			os.Exit(podnet.Run())
//		}
//		os.Exit(m.Run())
//	}
func Run(env ...string) int {
	code, err := run(env)
	if err != nil {
		fmt.Fprintf(os.Stderr, "podnet: %v\n", err)
		return 1
	}
	return code
}

func run(env []string) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find test binary: %w", err)
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return 0, fmt.Errorf("unshare(1) (util-linux) is needed to create the pod network namespace: %w", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return 0, fmt.Errorf("ip(8) (iproute2) is needed to set up the pod network namespace: %w", err)
	}
	args := []string{"--net"}
	if os.Geteuid() != 0 {
		// Root in a user namespace of our own is what may configure the
		// new network namespace.
		args = append(args, "--map-root-user")
	}
	// A dry run first, so a host that forbids it gets a reason, not just
	// the exit status 1 a failing test would have too.
	probe := exec.Command(unshare, append(append([]string{}, args...), "--", "ip", "link", "set", "lo", "up")...)
	if out, err := probe.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("cannot create a network namespace (needs root, or unprivileged user namespaces; "+
			"on Ubuntu 24.04 also sysctl kernel.apparmor_restrict_unprivileged_userns=0): %v: %s", err, out)
	}
	args = append(args, "--", "/bin/sh", "-c", setupScript, self)
	args = append(args, os.Args[1:]...)
	cmd := exec.Command(unshare, args...)
	cmd.Env = append(append(os.Environ(), env...), insideEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// The inner test process dies with this one (a killed `go test`).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exitErr.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("run the test binary in a new network namespace: %w", err)
	}
	return 0, nil
}
