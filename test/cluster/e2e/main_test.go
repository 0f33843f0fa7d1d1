// Package e2e is Flint's cluster end-to-end suite: a real control plane
// (kube-apiserver, etcd, kube-controller-manager: Deployments, ReplicaSets,
// EndpointSlices, garbage collection), the test node agent running pods as
// local processes, a userspace kube-proxy for ClusterIPs, and then the real
// `flint manager` and two `flint gateway` processes, one routing to pods
// directly and one through Services, with the `flint proxy` sidecar in
// every agent pod. Tests act as a user would: create Agents, invoke them
// through a gateway under load, and check what clients see.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	"github.com/flint-dev/flint/test/cluster/serviceproxy"
)

// The cluster, shared by every test; each test works in a namespace of
// its own.
var (
	env     *testenv.Env
	kube    kubernetes.Interface
	node    *nodeagent.Agent
	output  = &recorder{}
	bins    struct{ flint, echo string }
	direct  *gatewayProc // -direct-to-pod (the default)
	viaSvc  *gatewayProc // -direct-to-pod=false: through ClusterIPs
	manager *process
)

const (
	flintImage = "flint:test"
	echoImage  = "echo:test"
	// serviceCIDR lies inside the pod network namespace, so the service
	// proxy can listen on ClusterIPs.
	serviceCIDR = "10.244.128.0/24"
	binDirEnv   = "FLINT_CLUSTER_E2E_BIN_DIR"
)

func TestMain(m *testing.M) {
	if !podnet.Inside() {
		os.Exit(outside())
	}
	ctrllog.SetLogger(logr.Discard())
	os.Exit(inside(m))
}

// outside builds the binaries (the module proxy is reachable only here),
// then runs the suite in a pod network namespace.
func outside() int {
	dir, err := os.MkdirTemp("", "flint-cluster-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, b := range []struct{ out, pkg string }{{filepath.Join(dir, "flint"), "./cmd/flint"}, {filepath.Join(dir, "echo"), "./examples/echo"}} {
		if err := testenv.Build(b.out, b.pkg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return podnet.Run(binDirEnv + "=" + dir)
}

func inside(m *testing.M) int {
	begin := time.Now()
	dir := os.Getenv(binDirEnv)
	bins.flint, bins.echo = filepath.Join(dir, "flint"), filepath.Join(dir, "echo")
	stop, err := startCluster(dir)
	defer stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		fmt.Fprintln(os.Stderr, output.tail(40))
		return 1
	}
	fmt.Fprintf(os.Stderr, "cluster, manager and gateways up in %s\n", time.Since(begin).Round(time.Millisecond))
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "manager and gateways, last lines:\n%s\n", output.tail(60))
	}
	return code
}

// startCluster starts everything; stop undoes whatever started, in reverse.
func startCluster(dir string) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if env, err = testenv.New(testenv.Options{ControllerManager: true, ServiceCIDR: serviceCIDR}); err != nil {
		return stop, err
	}
	stops = append(stops, func() { _ = env.Stop() })
	if kube, err = kubernetes.NewForConfig(env.Config); err != nil {
		return stop, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	node, err = nodeagent.Start(ctx, nodeagent.Config{
		Client:   kube,
		Images:   map[string]string{flintImage: bins.flint, echoImage: bins.echo},
		Output:   output,
		IPPrefix: podnet.PodIPPrefix,
		HostIP:   podnet.HostIP,
	})
	if err != nil {
		return stop, err
	}
	stops = append(stops, func() {
		node.Stop()
		if leaked := node.LiveProcesses(); len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: pod processes left running: %v\n", leaked)
			os.Exit(1)
		}
	})
	proxy, err := serviceproxy.Start(context.Background(), kube, output) // Stop ends it
	if err != nil {
		return stop, err
	}
	stops = append(stops, proxy.Stop)

	tokenFile := filepath.Join(dir, "control-token")
	token := make([]byte, 24)
	_, _ = rand.Read(token)
	if err := os.WriteFile(tokenFile, []byte(hex.EncodeToString(token)), 0o600); err != nil {
		return stop, err
	}
	for _, g := range []struct {
		p    **gatewayProc
		name string
		args []string
	}{{&direct, "gateway-direct", nil}, {&viaSvc, "gateway-service", []string{"-direct-to-pod=false"}}} {
		gp, err := startGateway(g.name, tokenFile, g.args...)
		if err != nil {
			return stop, err
		}
		*g.p = gp
		stops = append(stops, gp.stop)
	}
	manager, err = startProcess("manager", bins.flint, "manager",
		"-kubeconfig", env.Kubeconfig, "-leader-elect=false", "-metrics-addr=0", "-health-probe-addr=0",
		"-sidecar-image", flintImage, "-drain-delay=1s", "-drain-timeout=10s", "-shutdown-margin=2s",
		"-gateways", "http://"+direct.control+",http://"+viaSvc.control, "-control-token-file", tokenFile,
		"-log-format=text")
	if err != nil {
		return stop, err
	}
	stops = append(stops, func() { manager.stop() }) // the one running at the end: a test may restart it
	return stop, nil
}

// recorder keeps every line the processes and pods print.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for l := range strings.SplitSeq(strings.TrimRight(string(p), "\n"), "\n") {
		r.lines = append(r.lines, l)
	}
	return len(p), nil
}

// about returns the lines mentioning s.
func (r *recorder) about(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.lines {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func (r *recorder) tail(n int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines[max(0, len(r.lines)-n):], "\n")
}
