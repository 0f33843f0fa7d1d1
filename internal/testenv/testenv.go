// Package testenv runs a real Kubernetes control plane for tests: etcd and
// kube-apiserver through controller-runtime's envtest, with Flint's CRDs
// installed, and optionally kube-controller-manager. The binaries are built
// from the Go module proxy by hack/kube-binaries.sh; nothing is downloaded
// at test time, and a missing binary fails the test rather than skipping it,
// so CI can never pass by silently not testing.
//
// Starting a control plane takes several seconds on two cores: share one
// per package (one top-level test with subtests, or New in TestMain) and
// give each test a namespace of its own with Env.Namespace.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/testutil/reaper"
)

// Options selects what runs besides etcd and kube-apiserver.
type Options struct {
	// ControllerManager also runs kube-controller-manager against the API
	// server: Deployments get ReplicaSets and Pods, objects whose owner is
	// deleted are garbage-collected, namespaces finish deleting.
	ControllerManager bool
	// ServiceCIDR is the range Services' ClusterIPs come from (kube-apiserver
	// --service-cluster-ip-range); empty keeps envtest's 10.0.0.0/24. A test
	// that reaches ClusterIPs picks a range its network can listen on.
	ServiceCIDR string
	// APIServerFlags are extra kube-apiserver flags (name without dashes:
	// value), e.g. an audit log for a benchmark that counts writes.
	APIServerFlags map[string]string
}

// Env is a running control plane.
type Env struct {
	// Config reaches the API server as an admin (system:masters).
	Config *rest.Config
	// Client is a controller-runtime client for Config with Scheme.
	Client client.Client
	// Scheme knows client-go's built-in types, CustomResourceDefinitions
	// and Flint's v1alpha1.
	Scheme *runtime.Scheme
	// Kubeconfig is the path of a kubeconfig file for Config, for child
	// processes such as `flint manager --kubeconfig`.
	Kubeconfig string
	// Dir is the environment's scratch directory (etcd data, certificates,
	// logs); it is removed on Stop.
	Dir string
	// ModuleRoot is the directory of Flint's go.mod.
	ModuleRoot string
	// Environment is the underlying envtest environment (for AddUser etc.).
	Environment *envtest.Environment

	cm      *controllerManager
	reaper  *reaper.Reaper
	guarded []int // pids of etcd, kube-apiserver, kube-controller-manager
	logs    []*os.File
}

// Default timeouts, generous for a loaded 2-core machine; envtest's own
// default (20s) is too short for kube-apiserver there.
const (
	startTimeout = 90 * time.Second
	stopTimeout  = 30 * time.Second
)

// Start starts a control plane for t and stops it in t.Cleanup. It fails t
// (never skips) when the binaries are missing or anything does not start.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	begin := time.Now()
	env, err := New(opts)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Logf("testenv: control plane up in %s (controller-manager: %v, dir %s)",
		time.Since(begin).Round(time.Millisecond), opts.ControllerManager, env.Dir)
	t.Cleanup(func() {
		if t.Failed() && env.cm != nil {
			t.Logf("testenv: kube-controller-manager log tail:\n%s", tail(env.cm.logPath, 30))
		}
		if err := env.Stop(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return env
}

// New starts a control plane; the caller must call Stop. For TestMain,
// where there is no testing.TB; tests use Start.
func New(opts Options) (env *Env, err error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	assets := AssetsDir(root)
	binaries := map[string]string{}
	need := []string{"kube-apiserver", "etcd"}
	if opts.ControllerManager {
		need = append(need, "kube-controller-manager")
	}
	for _, name := range need {
		if binaries[name], err = binaryPath(assets, name); err != nil {
			return nil, err
		}
	}
	scheme, err := newScheme()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "flint-testenv-")
	if err != nil {
		return nil, fmt.Errorf("scratch directory: %w", err)
	}
	env = &Env{Scheme: scheme, Dir: dir, ModuleRoot: root}
	defer func() {
		if err != nil {
			err = errors.Join(err, env.Stop())
			env = nil
		}
	}()

	te := &envtest.Environment{
		Scheme:                scheme,
		CRDDirectoryPaths:     []string{filepath.Join(root, "deploy", "crds")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	// KUBEBUILDER_CONTROLPLANE_{START,STOP}_TIMEOUT still win when set.
	if os.Getenv("KUBEBUILDER_CONTROLPLANE_START_TIMEOUT") == "" {
		te.ControlPlaneStartTimeout = startTimeout
	}
	if os.Getenv("KUBEBUILDER_CONTROLPLANE_STOP_TIMEOUT") == "" {
		te.ControlPlaneStopTimeout = stopTimeout
	}
	// Directories of our choosing, inside dir: the reaper finds the
	// processes by them and removes them if the test process dies.
	te.ControlPlane.Etcd = &envtest.Etcd{Path: binaries["etcd"], DataDir: filepath.Join(dir, "etcd")}
	te.ControlPlane.APIServer = &envtest.APIServer{Path: binaries["kube-apiserver"], CertDir: filepath.Join(dir, "apiserver")}
	if opts.ServiceCIDR != "" {
		te.ControlPlane.APIServer.Configure().Set("service-cluster-ip-range", opts.ServiceCIDR)
	}
	for name, value := range opts.APIServerFlags {
		te.ControlPlane.APIServer.Configure().Set(name, value)
	}
	for _, d := range []string{te.ControlPlane.Etcd.DataDir, te.ControlPlane.APIServer.CertDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return env, fmt.Errorf("scratch directory: %w", err)
		}
	}
	if err := env.captureOutput(te); err != nil {
		return env, err
	}
	env.Environment = te
	if env.Config, err = te.Start(); err != nil {
		// Stop removes dir and the logs in it: quote them first.
		return env, fmt.Errorf("start kube-apiserver and etcd: %w\n%s", err, env.logTails())
	}
	if env.Client, err = client.New(env.Config, client.Options{Scheme: scheme}); err != nil {
		return env, fmt.Errorf("client: %w", err)
	}
	env.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := os.WriteFile(env.Kubeconfig, te.KubeConfig, 0o600); err != nil {
		return env, fmt.Errorf("write kubeconfig: %w", err)
	}

	if opts.ControllerManager {
		if env.cm, err = startControllerManager(te, binaries["kube-controller-manager"], dir); err != nil {
			return env, err
		}
	}
	env.guarded = childrenUnder(dir)
	if env.reaper, err = startReaper(dir, env.guarded); err != nil {
		return env, err
	}
	if env.cm != nil {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		if err := env.cm.waitReady(ctx, env.Client); err != nil {
			return env, err
		}
	}
	return env, nil
}

// captureOutput sends etcd's and kube-apiserver's output to files in dir
// (unless KUBEBUILDER_ATTACH_CONTROL_PLANE_OUTPUT attaches it to the test's),
// so a failure can be investigated after the fact.
func (e *Env) captureOutput(te *envtest.Environment) error {
	if os.Getenv("KUBEBUILDER_ATTACH_CONTROL_PLANE_OUTPUT") == "true" {
		return nil
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		f, err := os.Create(filepath.Join(e.Dir, name+".log"))
		if err != nil {
			return fmt.Errorf("log file: %w", err)
		}
		e.logs = append(e.logs, f)
		if name == "etcd" {
			te.ControlPlane.Etcd.Out, te.ControlPlane.Etcd.Err = f, f
		} else {
			te.ControlPlane.APIServer.Out, te.ControlPlane.APIServer.Err = f, f
		}
	}
	return nil
}

// logTails returns the end of etcd's and kube-apiserver's logs.
func (e *Env) logTails() string {
	var b strings.Builder
	for _, f := range e.logs {
		fmt.Fprintf(&b, "--- %s (last lines):\n%s", filepath.Base(f.Name()), tail(f.Name(), 15))
	}
	return b.String()
}

func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("scheme: %w", err)
	}
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("scheme: %w", err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("scheme: %w", err)
	}
	return s, nil
}

// Stop stops kube-controller-manager, kube-apiserver and etcd, waits for
// them to exit and removes Dir. It is safe to call on a partly started Env.
func (e *Env) Stop() error {
	if e == nil {
		return nil
	}
	var errs []error
	if err := e.cm.stop(stopTimeout); err != nil {
		errs = append(errs, err)
	}
	e.cm = nil
	if e.Environment != nil {
		if err := e.Environment.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop kube-apiserver and etcd: %w", err))
		}
		e.Environment = nil
	}
	e.reaper.Stop()
	e.reaper = nil
	for _, f := range e.logs {
		f.Close()
	}
	e.logs = nil
	if e.Dir != "" {
		if err := os.RemoveAll(e.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", e.Dir, err))
		}
	}
	return errors.Join(errs...)
}

// Namespace creates a namespace with a generated name for t and deletes it
// at cleanup, so tests sharing an Env never see each other's objects.
// (Without kube-controller-manager a deleted namespace stays Terminating;
// that is harmless, its name is never reused.)
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"}}
	if err := e.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("testenv: create namespace: %v", err)
	}
	t.Cleanup(func() {
		if e.Environment == nil {
			return // stopped already; the namespace went with etcd
		}
		if err := e.Client.Delete(context.Background(), ns); err != nil {
			t.Errorf("testenv: delete namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}
