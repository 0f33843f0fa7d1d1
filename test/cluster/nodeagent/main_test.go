package nodeagent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/test/cluster/nodeagent"
	"github.com/flint-dev/flint/test/cluster/podnet"
)

// One control plane (with kube-controller-manager) and one node agent for
// the whole package; every test works in a namespace of its own.
var (
	env    *testenv.Env
	client kubernetes.Interface
	agent  *nodeagent.Agent
	events = &recorder{}
	bins   struct{ flint, echo string }
)

const (
	nodeName     = "nodeagent-test"
	flintImage   = "flint:test"
	echoImage    = "echo:test"
	shellImage   = "shell:test" // /bin/sh: for containers that misbehave on purpose
	crashBackoff = 200 * time.Millisecond
)

// binDirEnv passes the directory of the binaries built outside the pod
// network namespace (where the Go module proxy is reachable) to the test
// process inside it.
const binDirEnv = "NODEAGENT_TEST_BIN_DIR"

func TestMain(m *testing.M) {
	if !podnet.Inside() {
		os.Exit(outside())
	}
	// controller-runtime warns, with a stack trace, when nothing set a logger.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(inside(m))
}

// outside builds the binaries, then runs the tests in a pod network
// namespace: EndpointSlices refuse the loopback pod IPs the agent would
// otherwise use.
func outside() int {
	dir, err := os.MkdirTemp("", "flint-nodeagent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	begin := time.Now()
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "built flint and echo in %s\n", time.Since(begin).Round(time.Millisecond))
	return podnet.Run(binDirEnv + "=" + dir)
}

func inside(m *testing.M) int {
	begin := time.Now()
	dir := os.Getenv(binDirEnv)
	bins.flint, bins.echo = filepath.Join(dir, "flint"), filepath.Join(dir, "echo")
	var err error
	if env, err = testenv.New(testenv.Options{ControllerManager: true}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer env.Stop()
	if client, err = kubernetes.NewForConfig(env.Config); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	agent, err = nodeagent.Start(ctx, nodeagent.Config{
		Client:   client,
		NodeName: nodeName,
		Images: map[string]string{
			flintImage: bins.flint,
			echoImage:  bins.echo,
			shellImage: "/bin/sh",
		},
		Output:         events,
		RestartBackoff: crashBackoff,
		IPPrefix:       podnet.PodIPPrefix,
		HostIP:         podnet.HostIP,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "control plane and node agent up in %s\n", time.Since(begin).Round(time.Millisecond))
	code := m.Run()
	stopped := time.Now()
	agent.Stop()
	fmt.Fprintf(os.Stderr, "node agent stopped in %s\n", time.Since(stopped).Round(time.Millisecond))
	if leaked := agent.LiveProcesses(); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: processes left running after Stop: %v\n", leaked)
		return 1
	}
	return code
}

func buildBinaries(dir string) error {
	for _, b := range []struct{ out, pkg string }{{filepath.Join(dir, "flint"), "./cmd/flint"}, {filepath.Join(dir, "echo"), "./examples/echo"}} {
		if err := testenv.Build(b.out, b.pkg); err != nil {
			return err
		}
	}
	return nil
}

// recorder keeps every line the agent writes: container output and the
// agent's events, in the order they happened.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// about returns the lines that mention s (e.g. "ns/pod").
func (r *recorder) about(s string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.lines {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// namespace creates a namespace for t; on failure, everything the agent
// logged about it is printed.
func namespace(t *testing.T) string {
	t.Helper()
	ns := env.Namespace(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node agent output for namespace %s:\n%s", ns, strings.Join(events.about(ns+"/"), "\n"))
		}
	})
	return ns
}
